"""A long run compiled as a chain of bounded pipelines (`sdar compile --rounds-per-run K`).

The KFP backend turns each run into one Argo Workflow whose size grows with every task
(DESIGN.md §4); a 150-round pipeline is over what Argo and etcd accept. A run of T rounds is
therefore compiled as ⌈T / K⌉ chunks of at most K rounds (`split_run`), each a pipeline that
starts at its first round (pipelines/sdar_pipeline.py: chained runs), written next to OUT as

    OUT-1of3.yaml  OUT-2of3.yaml  OUT-3of3.yaml   the chunks, in order
    OUT.chain.json                                  the manifest `sdar submit` reads

and a run that fits in one pipeline is written to OUT as before (no manifest). Chunk files of
an earlier compile to the same OUT with another count are removed, so the folder holds one
chain. The manifest names each chunk's file, rounds, and the display names of the tasks whose
outputs the next chunk imports (the last update; the warm start, whose checkpoint is the run's
start model).

K is the flag (or the recipe's `rounds_per_run`); without one it is the largest K whose chunks
all fit the Workflow budget by `pipelines.argo_size.estimate_workflow_bytes` where that module
is installed, else the run is compiled as one pipeline. Every chunk is checked against the
budget when the estimator is there, and a K too large is refused with the largest that fits.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipelines.sdar_pipeline import PipelineOptions, compile_pipeline, split_run
from sdar_core.errors import ConfigError
from sdar_core.outputs import write_text_atomic

__all__ = ["MANIFEST_SUFFIX", "chunk_paths", "compile_chain", "compiled_runs", "read_manifest"]

MANIFEST_SUFFIX = ".chain.json"
SFT_TASK = "warm start (SFT)"


def update_task(r: int) -> str:
    """The display name of round `r`'s update (its `checkpoint` output ends a chunk)."""
    return f"round {r}: update"


def chunk_paths(out: Path, n: int) -> list[Path]:
    """The chunk files of a chain of `n` written for OUT (module docstring)."""
    stem = out.name.removesuffix(".yaml")
    return [out.with_name(f"{stem}-{i}of{n}.yaml") for i in range(1, n + 1)]


def manifest_path(out: Path) -> Path:
    return out.with_name(out.name.removesuffix(".yaml") + MANIFEST_SUFFIX)


def _estimator() -> Any | None:
    """`pipelines.argo_size` (estimate_workflow_bytes, WORKFLOW_BUDGET_BYTES), or None."""
    try:
        from pipelines import argo_size
    except ImportError:
        return None
    return argo_size


def _estimate(options: PipelineOptions, estimator: Any) -> int:
    with tempfile.TemporaryDirectory(prefix="sdar-chunk-") as tmp:
        path = compile_pipeline(options, Path(tmp) / "chunk.yaml")
        return int(estimator.estimate_workflow_bytes(path))


def largest_fitting_k(options: PipelineOptions, estimator: Any) -> int:
    """The largest K whose chunks all fit the budget: the Workflow grows linearly with the
    rounds (DESIGN.md §4), so compile the first chunk with 1 and 2 rounds for the slope and the
    first and last chunk with 1 round for the fixed part, then step down while a chunk of K is
    over (rounding in the fit)."""
    budget, total = int(estimator.WORKFLOW_BUDGET_BYTES), options.rounds
    if total < 2:
        return max(total, 1)

    def chunk(first: int, rounds: int) -> PipelineOptions:
        return replace(options, first_round=first, rounds=rounds, total_rounds=total)

    one, two = _estimate(chunk(0, 1), estimator), _estimate(chunk(0, 2), estimator)
    fixed = max(one, _estimate(chunk(total - 1, 1), estimator))
    per_round = max(two - one, 1)
    k = max(1, min(total, (budget - fixed) // per_round + 1))
    while k > 1 and max(_estimate(c, estimator) for c in _worst_chunks(options, k)) > budget:
        k -= 1
    return k


def _worst_chunks(options: PipelineOptions, k: int) -> list[PipelineOptions]:
    """The first and last chunk of a split into K (the others are the first's size or less)."""
    chunks = split_run(options, k)
    return [chunks[0], chunks[-1]] if len(chunks) > 1 else chunks


def compile_chain(
    options: PipelineOptions, out: str | Path, *, rounds_per_run: int | None = None
) -> list[Path]:
    """Compile the run `options` for OUT (module docstring); return the files written."""
    out = Path(out)
    estimator = _estimator()
    k = rounds_per_run
    if k is None and estimator is not None and options.rounds:
        k = largest_fitting_k(options, estimator)
    chunks = split_run(options, k)
    if len(chunks) == 1:
        written = [compile_pipeline(options, out)]
    else:
        paths = chunk_paths(out, len(chunks))
        written = [compile_pipeline(c, p) for c, p in zip(chunks, paths, strict=True)]
    if estimator is not None:
        _check_budget(options, written, estimator, k)
    _remove_stale_chunks(out, keep=set(written))
    if len(chunks) == 1:
        manifest_path(out).unlink(missing_ok=True)
        return written
    manifest = {
        "pipeline": options.name,
        "total_rounds": options.rounds,
        "rounds_per_run": k,
        "start_model_task": SFT_TASK if options.warm_start else None,
        "chunks": [
            {
                "package": path.name,
                "first_round": chunk.first_round,
                "rounds": chunk.rounds,
                "checkpoint_task": update_task(chunk.first_round + chunk.rounds - 1),
            }
            for chunk, path in zip(chunks, written, strict=True)
        ],
    }
    path = manifest_path(out)
    write_text_atomic(path, json.dumps(manifest, indent=1) + "\n")
    return [*written, path]


def _check_budget(options: PipelineOptions, written: list[Path], estimator: Any, k) -> None:
    budget = int(estimator.WORKFLOW_BUDGET_BYTES)
    for path in written:
        size = int(estimator.estimate_workflow_bytes(path))
        if size > budget:
            fits = largest_fitting_k(options, estimator)
            raise ConfigError(
                f"{path.name}: its Argo Workflow is ~{size:,} bytes, over the {budget:,}-byte "
                f"budget (rounds_per_run={k}): compile with --rounds-per-run {fits} or less"
            )


def _remove_stale_chunks(out: Path, keep: set[Path]) -> None:
    """Chunk files of an earlier compile for OUT (another chunk count), and OUT itself when the
    run is now a chain: the folder holds one compiled run."""
    stem = re.escape(out.name.removesuffix(".yaml"))
    pattern = re.compile(rf"{stem}-\d+of\d+\.yaml")
    if not out.parent.is_dir():
        return
    for path in out.parent.iterdir():
        if (pattern.fullmatch(path.name) or path == out) and path not in keep:
            path.unlink()


def compiled_runs(
    options: PipelineOptions, written: list[Path]
) -> list[tuple[Path, PipelineOptions]]:
    """(file, options) of each pipeline `compile_chain(options, ...)` wrote, in order (for the
    plan, pipelines/plan.py)."""
    if len(written) == 1:
        return [(written[0], options)]
    chunks = split_run(options, json.loads(written[-1].read_text())["rounds_per_run"])
    return list(zip(written[:-1], chunks, strict=True))


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The chain manifest at `path`, its chunk files resolved; one-line error if it is not."""
    from sdar_core.run.config import read_json_object

    path = Path(path)
    data = read_json_object(
        path, what="chain manifest", write="the file sdar compile wrote", example="OUT.chain.json"
    )
    try:
        chunks = [dict(c) | {"package": path.parent / c["package"]} for c in data["chunks"]]
        data["total_rounds"], data["start_model_task"]  # noqa: B018 - required keys
    except (KeyError, TypeError):
        raise ConfigError(
            f"{path} is not a chain manifest: compile it again with sdar compile"
        ) from None
    for chunk in chunks:
        if not chunk["package"].is_file():
            raise ConfigError(f"{path}: chunk file {chunk['package']} is missing: compile again")
    return data | {"chunks": chunks}
