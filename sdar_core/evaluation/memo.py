"""Reuse of an evaluation already computed on the same inputs (the embedded runner's).

Every training run of a replicate starts by evaluating its start checkpoint; the runs share one
warm start, so that evaluation is the same computation in every run (20 times in the four-arm
replicate, ~21 s each on 2 cores). kfp.local's cache cannot serve it: the task also takes the
run's MLflow run id. So when the environment names a memo folder (`SDAR_EVAL_MEMO`, set by the
embedded runner for its out-dir), `evaluate_memoized` keys the evaluation by the SHA-256 of every
input that decides its result and reuses a stored result on a hit:

- every file of the checkpoint folder, of the games folder and (when the prompt shows skills) of
  the skill index, by relative path and content;
- the resolved `EvalConfig` (without `workers`, which the result does not depend on);
- torch's intra-op thread count: a matmul's float sums depend on it, so a sampled token could
  too; a hit therefore gives exactly what computing would have given on this thread count;
- the package version.

A hit writes the stored results with this call's `model_dir` and `skills_index_dir`; a miss
evaluates and stores the results beside the config, thread count and version they were keyed by
(temp file, then rename: two runs that miss at once both store the same bytes). Not keyed:
the code of the environment and of decoding, as for kfp.local's own cache; a code change that
alters evaluation needs a new out-dir or an emptied memo folder.
Without the variable (a cluster task, `sdar eval`), for the scripted policies and for a model
that is not a local folder, evaluation always runs.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from sdar_core.evaluation.config import EvalConfig
from sdar_core.evaluation.evaluate import evaluate, write_results
from sdar_core.models.checksums import file_sha256

__all__ = ["MEMO_ENV", "evaluate_memoized", "memo_inputs", "memo_key"]

MEMO_ENV = "SDAR_EVAL_MEMO"


def evaluate_memoized(
    model_dir: str | os.PathLike[str],
    games_dir: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    config: EvalConfig,
    *,
    skills_index_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """`evaluate`, or the stored result of the same evaluation (module docstring)."""
    memo = os.environ.get(MEMO_ENV)
    if not memo or config.policy != "model" or not Path(model_dir).is_dir():
        return evaluate(model_dir, games_dir, out_path, config, skills_index_dir=skills_index_dir)
    index = skills_index_dir if config.student_sees_skills else None
    inputs = memo_inputs(config)
    stored = Path(memo) / f"{memo_key(model_dir, games_dir, index, inputs)}.json"
    if stored.is_file():
        results = json.loads(stored.read_text())["results"]
        results["model_dir"] = str(model_dir)
        results["skills_index_dir"] = None if index is None else str(index)
        write_results(Path(out_path), results)
        return results
    results = evaluate(model_dir, games_dir, out_path, config, skills_index_dir=skills_index_dir)
    write_results(stored, {"inputs": inputs, "results": results})
    return results


def memo_inputs(config: EvalConfig) -> dict[str, Any]:
    """What the key covers besides the folders; stored beside the results."""
    from sdar_core import __version__

    return {
        "config": config.model_dump(mode="json", exclude={"workers"}),
        "threads": torch.get_num_threads(),
        "version": __version__,
    }


def memo_key(
    model_dir: str | os.PathLike[str],
    games_dir: str | os.PathLike[str],
    skills_index_dir: str | os.PathLike[str] | None,
    inputs: dict[str, Any],
) -> str:
    """The SHA-256 of everything the result depends on (module docstring): the folders and
    `memo_inputs`."""
    digest = hashlib.sha256()
    digest.update(json.dumps(inputs, sort_keys=True).encode())
    for name, folder in (("model", model_dir), ("games", games_dir), ("skills", skills_index_dir)):
        digest.update(f"\0{name}\0".encode())
        if folder is not None:
            _hash_folder(digest, Path(folder))
    return digest.hexdigest()


def _hash_folder(digest: Any, folder: Path) -> None:
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name, size = path.relative_to(folder).as_posix(), path.stat().st_size
        digest.update(f"{name}\0{size}\0{file_sha256(path)}\0".encode())
