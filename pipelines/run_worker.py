"""Embedded runs in processes of their own, beside others (`sdar replicate --workers N`).

    python -m pipelines.run_worker CONFIG_JSON RESULT_JSON     # one run
    python -m pipelines.run_worker --serve LOG                 # runs, one after another

kfp.local keeps its settings (runner, pipeline root, cache) in the process, so runs that go at
once need processes of their own. The parent (`sdar replicate`) holds the out-dir's lock and has
cleaned the pipeline root; the worker runs `run_local(config, beside_others=True)` and writes its
`LocalRunResult` as JSON to RESULT_JSON (temp file, then rename), which `run_in_worker` reads
back. All runs share the out-dir's pipeline root, kfp cache (each entry is written to a temp
file and renamed) and MLflow store (sqlite, whose writers wait for each other).

`run_in_worker` starts the worker with `threads` intra-op threads for torch (OMP_NUM_THREADS;
its tasks and their warm server inherit it), so N workers share the cores instead of each
taking all of them. The worker's terminal output goes to `<out_dir>/logs/worker-<run>.out`; a
worker that fails raises `WorkerFailed` naming that file.

`RunWorkers(n, threads=...)` keeps n such processes for a whole replicate instead of one per
run: each reads requests (a config, a result path, an output path) from its stdin and runs them
one after another, its console output sent to each run's own file, under one warm task server
(pipelines.warm_tasks.shared_warm_server) for all its runs. A run then skips the interpreter's
start, the launcher's imports and the warm server's (~15 s of CPU each on 2 cores, measured),
and computes exactly what it would compute in a fresh worker: every task is still a child forked
from the import-only server. A run that fails is reported as in a fresh worker and the process
serves the next; a process that dies is replaced by a fresh one for the next run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import queue
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Iterator
from pathlib import Path

from pipelines.local import LocalRunResult, run_local
from sdar_core.errors import SdarError
from sdar_core.outputs import write_text_atomic
from sdar_core.run import RunConfig

__all__ = ["RunWorkers", "WorkerFailed", "run_in_worker"]

_PATHS = ("log_path", "final_checkpoint")  # the result's Path fields


class WorkerFailed(SdarError):
    """A run in a worker process ended with an error."""


@contextlib.contextmanager
def _request(config: RunConfig) -> Iterator[tuple[Path, Path, Path]]:
    """The files of one run in a worker: its config (written here), where its result will be
    (both in a temp folder removed at the end of the block) and its console output."""
    text = config.model_dump_json()
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    name = f"{config.algorithm}-seed{config.rollout.seed}-{digest}"
    logs = config.out_dir.resolve() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sdar-run-worker-") as tmp:
        config_path = Path(tmp) / "config.json"
        config_path.write_text(text)
        yield config_path, Path(tmp) / "result.json", logs / f"worker-{name}.out"


def _threads_env(threads: int) -> dict[str, str]:
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def _failed(config: RunConfig, output: Path, status: str) -> WorkerFailed:
    tail = output.read_text(errors="replace").strip().splitlines()[-1:] if output.is_file() else []
    return WorkerFailed(
        f"the {config.algorithm} run (seed {config.rollout.seed}) failed with {status}: "
        f"{tail[0] if tail else 'no output'}; its output: {output}"
    )


def _result(result_path: Path) -> LocalRunResult:
    fields = json.loads(result_path.read_text())
    for key in _PATHS:
        if fields[key] is not None:
            fields[key] = Path(fields[key])
    fields["executed"] = tuple(fields["executed"])
    return LocalRunResult(**fields)


def run_in_worker(config: RunConfig, *, threads: int) -> LocalRunResult:
    """Run `config`'s pipeline in a worker process (module docstring) and return its result."""
    with _request(config) as (config_path, result_path, output):
        with open(output, "w") as out:
            done = subprocess.run(
                [sys.executable, "-m", "pipelines.run_worker", str(config_path), str(result_path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=os.environ | _threads_env(threads),
                check=False,
            )
        if done.returncode != 0 or not result_path.is_file():
            raise _failed(config, output, f"exit status {done.returncode}")
        return _result(result_path)


class RunWorkers:
    """`n` long-lived worker processes (module docstring); calling it runs one config in an
    idle one (waiting for one to be idle) and returns its result. Safe to call from `n` threads
    at once. `close()` (or the end of a `with` block) lets each process finish and exit."""

    def __init__(self, n: int, *, threads: int, log_dir: Path) -> None:
        self._idle: queue.Queue[_Worker] = queue.Queue()
        for k in range(n):
            self._idle.put(_Worker(log_dir / f"worker-{k}.log", threads))

    def __call__(self, config: RunConfig) -> LocalRunResult:
        worker = self._idle.get()
        try:
            return worker.run(config)
        finally:
            self._idle.put(worker)

    def close(self) -> None:
        while not self._idle.empty():
            self._idle.get_nowait().close()

    def __enter__(self) -> RunWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Worker:
    """One serving process, started at its first run and again after it died."""

    def __init__(self, log_path: Path, threads: int) -> None:
        self.log_path, self.threads = log_path, threads
        self.process: subprocess.Popen | None = None

    def run(self, config: RunConfig) -> LocalRunResult:
        if self.process is None or self.process.poll() is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pipelines.run_worker", "--serve", str(self.log_path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,  # it sends its output to its log and the runs' files
                env=os.environ | _threads_env(self.threads),
                text=True,
            )
        with _request(config) as (config_path, result_path, output):
            request = {
                "config": str(config_path),
                "result": str(result_path),
                "output": str(output),
            }
            assert self.process.stdin is not None and self.process.stdout is not None
            try:
                self.process.stdin.write(json.dumps(request) + "\n")
                self.process.stdin.flush()
            except BrokenPipeError:
                pass  # it died: the reply below is empty
            reply = self.process.stdout.readline()
            if not reply:
                status = self.process.wait()
                raise _failed(
                    config, output, f"its worker's exit status {status} (see {self.log_path})"
                )
            if json.loads(reply)["status"] != "ok" or not result_path.is_file():
                raise _failed(config, output, "an error")
            return _result(result_path)

    def close(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(BrokenPipeError, OSError):
            assert self.process.stdin is not None
            self.process.stdin.close()  # end of requests: it stops its server and exits
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            self.process.wait()


def main(config_path: str | Path, result_path: str | Path) -> None:
    """One run: the config's pipeline, its result written as JSON (temp file, then rename)."""
    config = RunConfig.model_validate_json(Path(config_path).read_text())
    result = run_local(config, beside_others=True)
    fields = dataclasses.asdict(result)
    for key in _PATHS:
        if fields[key] is not None:
            fields[key] = str(fields[key])
    write_text_atomic(Path(result_path), json.dumps(fields))


def serve(log_path: Path) -> None:
    """The serving process (RunWorkers): a JSON request per line; for each, the run's output
    goes to its file (first line: this process's id and how many runs it has served) and one
    JSON line goes back on the original stdout ({"status": "ok"} or
    {"status": "failed"}, the traceback in the run's output). Ends at the end of its input; a
    signal (the replicate stopping) ends it at once, its run ending KILLED in MLflow."""
    from pipelines.warm_tasks import shared_warm_server

    replies = os.fdopen(os.dup(1), "w")
    with open(log_path, "ab") as log, _output_to(log.fileno()):
        with shared_warm_server(log_path):
            for served, line in enumerate(sys.stdin, start=1):
                request = json.loads(line)
                with open(request["output"], "wb") as out, _output_to(out.fileno()):
                    print(f"worker process {os.getpid()}, its run {served}", flush=True)
                    try:
                        main(request["config"], request["result"])
                        status = "ok"
                    except Exception:
                        traceback.print_exc()
                        status = "failed"
                replies.write(json.dumps({"status": status}) + "\n")
                replies.flush()


@contextlib.contextmanager
def _output_to(fd: int) -> Iterator[None]:
    """This process's stdout and stderr (the file descriptors, so that its children inherit
    them) sent to `fd` within the block."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(Path(sys.argv[2]))
    else:
        main(*sys.argv[1:])
