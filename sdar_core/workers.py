"""Worker processes for the model stages: one per GPU, each seeing only its own GPU.

Rollouts, teacher scoring and evaluation split their work (groups, samples, episodes) into
shards and hand each worker a list of them (`split_evenly`); `run_workers(target, payloads,
device=...)` runs `target(payload)` once per payload and returns the results in payload order,
so the caller merges them in a fixed order whichever worker finished first.

- `workers` in a stage config is a count or "auto" (`resolve_workers`): auto is the number of
  visible GPUs on device "cuda" (CUDA_VISIBLE_DEVICES when set, else torch's count), 1 on CPU
  or on a fixed device "cuda:<index>".
- One worker runs `target` in this process (no spawn: the single-GPU and CPU default stays what
  it was). Several are spawned (not forked: CUDA cannot be used in a forked child, and vLLM's own
  engine processes need a non-daemonic parent), each with CUDA_VISIBLE_DEVICES set to its GPU on
  "cuda", so its model goes to "cuda" = its GPU. On CPU, several workers share the cores
  (they exist there to test the sharding).
- A worker writes its result to a file (pickle, written to a temporary name and renamed) rather
  than a pipe, so a large result cannot block a worker that the parent is waiting on. A worker
  that raises writes the exception (and its traceback); the parent stops the other workers and
  raises that exception, chained to a `WorkerError` carrying the traceback. A worker that dies
  without a word (killed, out of memory) raises a `WorkerError` with its exit status. No partial
  result is ever returned.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import pickle
import tempfile
import traceback
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Literal

from sdar_core.errors import ConfigError

__all__ = [
    "WorkerError",
    "Workers",
    "blocks",
    "check_workers",
    "resolve_workers",
    "run_workers",
    "shard_size",
    "split_evenly",
    "visible_gpus",
]

Workers = int | Literal["auto"]


class WorkerError(RuntimeError):
    """A worker process failed; the message names the worker and carries its traceback.

    A RuntimeError, not an SdarError: a worker killed by the OOM killer or a lost GPU is what a
    retry may fix (sdar_core/run/failures.py), while a worker's own bad-input error is re-raised
    as itself and ends the task at once."""


def visible_gpus() -> list[str]:
    """The GPU ids this process may use: CUDA_VISIBLE_DEVICES when set, else 0..count-1."""
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if given is not None:
        return [g.strip() for g in given.split(",") if g.strip() and g.strip() != "-1"]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def check_workers(workers: Workers) -> None:
    """Raise unless `workers` is a count >= 1 or "auto" (configs call this when built)."""
    if workers == "auto":
        return
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be a count >= 1 or 'auto', got {workers!r}: use 'auto'")


def resolve_workers(workers: Workers, device: str) -> int:
    """How many worker processes a stage runs (module docstring)."""
    check_workers(workers)
    if workers == "auto":
        return max(1, len(visible_gpus())) if device == "cuda" else 1
    if workers > 1 and device.startswith("cuda:"):
        raise ConfigError(
            f"workers={workers} gives each worker a GPU of its own, but device={device!r} pins "
            "one: set device to 'cuda' (or workers to 1)"
        )
    if workers > 1 and device == "cuda":
        gpus = visible_gpus()
        if workers > len(gpus):
            raise ConfigError(
                f"workers={workers} but only {len(gpus)} GPUs are visible: set workers to "
                f"'auto' or at most {len(gpus)}"
            )
    return workers


def split_evenly(n_items: int, n_parts: int) -> list[range]:
    """`range(n_items)` cut into at most `n_parts` contiguous, non-empty runs whose lengths
    differ by at most one (longer ones first)."""
    parts = max(1, min(n_parts, n_items))
    size, extra = divmod(n_items, parts)
    out, start = [], 0
    for k in range(parts):
        stop = start + size + (k < extra)
        out.append(range(start, stop))
        start = stop
    return [r for r in out if len(r)]


def blocks(n_items: int, size: int) -> list[range]:
    """`range(n_items)` cut into contiguous runs of `size` (the last may be shorter)."""
    return [range(s, min(s + size, n_items)) for s in range(0, n_items, size)]


def shard_size(n_items: int, fixed: int | None, n_workers: int) -> int:
    """Items per shard: `fixed` when the config sets it, else an even split over the workers."""
    return fixed if fixed is not None else max(1, math.ceil(n_items / n_workers))


def run_workers(target: Callable[[Any], Any], payloads: Sequence[Any], *, device: str) -> list[Any]:
    """`[target(p) for p in payloads]`, one worker process per payload (module docstring).

    `target` must be a module-level function and the payloads picklable (they are sent to
    spawned processes).
    """
    if len(payloads) == 1:
        return [target(payloads[0])]
    gpus = visible_gpus() if device == "cuda" else []
    if device == "cuda" and len(gpus) < len(payloads):
        raise ConfigError(
            f"{len(payloads)} GPU workers but only {len(gpus)} GPUs are visible: set workers to "
            "'auto'"
        )
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="sdar-workers-") as tmp:
        processes = []
        try:
            for k, payload in enumerate(payloads):
                result_path = Path(tmp) / f"worker-{k}.pkl"
                gpu = gpus[k] if gpus else None
                process = context.Process(
                    target=_worker_main,
                    args=(target, payload, str(result_path)),
                    name=f"sdar-worker-{k}",
                    daemon=False,
                )
                with _cuda_visible(gpu):
                    process.start()
                processes.append(process)
            _wait_all(processes, tmp)
        finally:
            for process in processes:
                if process.is_alive():
                    process.terminate()
                process.join()
        return [_load(Path(tmp) / f"worker-{k}.pkl", k) for k in range(len(payloads))]


@contextmanager
def _cuda_visible(gpu: str | None):
    """CUDA_VISIBLE_DEVICES=gpu for a child spawned inside (it copies the environment)."""
    if gpu is None:
        yield
        return
    before = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    try:
        yield
    finally:
        if before is None:
            del os.environ["CUDA_VISIBLE_DEVICES"]
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = before


def _wait_all(processes: list, tmp: str) -> None:
    """Wait for every worker; on the first failure, stop the rest and raise its error."""
    pending = {p.sentinel: (k, p) for k, p in enumerate(processes)}
    while pending:
        for sentinel in wait(list(pending)):
            k, process = pending.pop(sentinel)
            process.join()
            if process.exitcode != 0:
                for _, other in pending.values():
                    other.terminate()
                _raise_failure(k, len(processes), process.exitcode, Path(tmp))


def _raise_failure(k: int, n: int, exitcode: int, tmp: Path) -> None:
    error_path = tmp / f"worker-{k}.pkl.error"
    if not error_path.is_file():
        how = f"was killed by signal {-exitcode}" if exitcode < 0 else f"exited with {exitcode}"
        raise WorkerError(
            f"worker {k} of {n} {how} before reporting an error (out of memory?): see its log "
            "above; no partial result was written"
        )
    exc, text = pickle.loads(error_path.read_bytes())
    wrapper = WorkerError(f"worker {k} of {n} failed:\n{text}")
    if exc is None:
        raise wrapper
    raise exc from wrapper


def _load(path: Path, k: int) -> Any:
    if not path.is_file():
        raise WorkerError(f"worker {k} ended without writing its result: no partial result used")
    return pickle.loads(path.read_bytes())


def _worker_main(target: Callable[[Any], Any], payload: Any, result_path: str) -> None:
    """A worker's body: run `target`, write its result (or its error) next to `result_path`."""
    path = Path(result_path)
    try:
        result = target(payload)
    except BaseException as exc:
        text = traceback.format_exc()
        try:
            data = pickle.dumps((exc, text))
            pickle.loads(data)  # an exception that does not unpickle is sent as text only
        except Exception:
            data = pickle.dumps((None, text))
        _write_atomic(path.with_name(path.name + ".error"), data)
        raise SystemExit(1) from None
    _write_atomic(path, pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
