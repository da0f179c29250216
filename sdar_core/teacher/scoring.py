"""The teacher-scoring stage: add `teacher_logprobs` to a trajectory artifact.

`score_teacher(model_dir, trajectories_dir, index_dir, out_dir, config, algorithm=…)`:
1. reads and validates the trajectories; an algorithm that needs no teacher (`get_algorithm(name)
   .needs_teacher` is False) skips the stage: the input artifact is copied to `out_dir` unchanged
   and the summary says `skipped`;
2. opens the skill index (checked against `config.skills_dir` when given, and against the
   trajectories' environment), retrieves skills once per group (query: the task text), and
   with `skill_noise` > 0 gives that share of the groups wrong skills (noise.py);
3. builds each sample's teacher input (inputs.py) and scores the response tokens with the same
   weights, forward only, at the temperature the rollouts were sampled at, so that with no skills
   teacher == student: with hf, each group's shared prefix (the system turn with its skills, and
   more where the members share it) runs once and its KV cache serves every member (prefix.py;
   `prefix_cache=False` scores every sample whole, forward.py); with vllm, prompt log-probs with
   vLLM's own prefix caching (vllm.py);
4. writes the scored artifact (kind "scored_trajectories") atomically, with a summary that holds
   the gap per outcome, also on the decisive tokens (decisive.py).

Steps 1, 2 and 4 run in this process; step 3 runs in `config.workers` worker processes, one per
GPU (sdar_core.workers). The groups are cut into shards of consecutive groups (`shard_groups`,
else an even split over the workers), each worker loads the model once and scores its shards one
by one (hf: each shard packed into batches of its own, so with a fixed `shard_groups` the scores
are the same with 1 worker or many; vllm: all of the worker's sequences in one engine call), and
the scores go back to their rows, whose order never changes.

`teacher_logprobs` is 0.0 on environment tokens (response_mask 0), like `old_logprobs`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from sdar_core.errors import ArtifactError
from sdar_core.rollout.loop import check_model_dir
from sdar_core.rollout.schema import (
    SUMMARY_FILE,
    read_metadata,
    read_trajectories,
    write_trajectories,
)
from sdar_core.teacher.config import TeacherConfig
from sdar_core.teacher.decisive import decisive_summary
from sdar_core.teacher.inputs import build_items, check_index_matches, retrieve_group_skills
from sdar_core.teacher.noise import add_retrieval_noise
from sdar_core.workers import blocks, resolve_workers, run_workers, shard_size, split_evenly

__all__ = ["score_shards", "score_teacher", "teacher_shards"]


def score_teacher(
    model_dir: str | os.PathLike[str],
    trajectories_dir: str | os.PathLike[str],
    index_dir: str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str],
    config: TeacherConfig,
    *,
    algorithm: Any = None,
) -> dict[str, Any]:
    """Score every sample with the skill-conditioned teacher; return the summary (module doc)."""
    rows = read_trajectories(trajectories_dir)
    meta = read_metadata(trajectories_dir)
    rollout_summary = _read_summary(trajectories_dir)
    algo = _resolve_algorithm(algorithm)
    if algo is not None and not algo.needs_teacher:
        return _skip(trajectories_dir, out_dir, rollout_summary, algo.name)
    if index_dir is None:
        raise ArtifactError("score_teacher needs a skill index: pass index_dir (sdar index-skills)")
    model_path = check_model_dir(model_dir)
    from sdar_core.models import load_tokenizer
    from sdar_core.skills import load_index

    index = load_index(index_dir, skills_dir=config.skills_dir)
    env_name = meta["config"]["env"] if "config" in meta else rows["env_name"][0]
    check_index_matches(index, env_name=env_name, task_types=sorted(set(rows["task_type"])))
    tokenizer = load_tokenizer(model_path, trust_remote_code=config.trust_remote_code)
    started = time.perf_counter()
    skills = retrieve_group_skills(index, rows, config, tokenizer)
    skills, noisy = add_retrieval_noise(
        skills, index.task_skills, share=config.skill_noise, seed=config.seed
    )
    items = build_items(rows, skills, tokenizer, max_prompt_tokens=config.max_prompt_tokens)
    temperature = float(meta["config"]["temperature"])
    scored = _score(
        model_path,
        items,
        rows["group_id"],
        config,
        temperature=temperature,
        pad_id=tokenizer.pad_token_id,
    )
    masks = rows["response_mask"]
    teacher = [
        [lp * m for lp, m in zip(s, mask, strict=True)]
        for s, mask in zip(scored, masks, strict=True)
    ]
    seconds = time.perf_counter() - started
    columns = rows.to_dict() | {
        "teacher_logprobs": teacher,
        "teacher_skills": [json.dumps(list(i.skills_used)) for i in items],
        "teacher_skill_tokens": [i.n_skill_tokens for i in items],
    }
    summary = (
        rollout_summary
        | _teacher_summary(rows, teacher, items, seconds, algo)
        | decisive_summary(rows, teacher, tokenizer)
    )
    # the share of teacher contexts (groups) given a wrong skill (noise.py)
    summary["teacher_noisy_context_share"] = len(noisy) / max(1, len(skills))
    metadata = {k: v for k, v in meta.items() if k not in ("schema_version", "kind", "n_rows")}
    metadata["teacher"] = {
        "config": config.model_dump(mode="json", exclude={"workers"}),  # not part of the result
        "index_dir": str(index_dir),
        "model_dir": str(model_path),
        "temperature": temperature,
    }
    write_trajectories(
        out_dir, columns, kind="scored_trajectories", metadata=metadata, summary=summary
    )
    return summary


Sequences = list[tuple[Sequence[int], int]]  # (teacher input ids, response start) per sample


@dataclass(frozen=True)
class _Shard:
    """Consecutive groups' samples: their rows in the artifact, sequences and group names."""

    rows: tuple[int, ...]
    sequences: Sequences
    groups: tuple[Hashable, ...]


@dataclass(frozen=True)
class _TeacherJob:
    """One worker's shards and what it needs to load the model and score them."""

    model_path: Path
    config: TeacherConfig
    temperature: float
    pad_id: int
    shards: tuple[_Shard, ...]


def teacher_shards(groups: Sequence[Hashable], shard_groups: int) -> list[list[int]]:
    """Row indices cut into shards of `shard_groups` consecutive groups (groups in order of
    first appearance), each shard's rows in artifact order."""
    rows_of: dict[Hashable, list[int]] = {}
    for i, group in enumerate(groups):
        rows_of.setdefault(group, []).append(i)
    names = list(rows_of)
    return [
        sorted(i for g in block for i in rows_of[names[g]])
        for block in blocks(len(names), shard_groups)
    ]


def _score(
    model_path: Path, items, groups, config: TeacherConfig, *, temperature: float, pad_id: int
) -> list[list[float]]:
    """Every item's response log-probs, sharded over the workers (module docstring)."""
    sequences = [(item.input_ids, item.response_start) for item in items]
    n_workers = resolve_workers(config.workers, config.device)
    n_groups = len(set(groups))
    shards = [
        _Shard(tuple(rows), [sequences[i] for i in rows], tuple(groups[i] for i in rows))
        for rows in teacher_shards(groups, shard_size(n_groups, config.shard_groups, n_workers))
    ]
    jobs = [
        _TeacherJob(model_path, config, temperature, pad_id, tuple(shards[i] for i in part))
        for part in split_evenly(len(shards), n_workers)
    ]
    out: list[list[float]] = [[] for _ in sequences]
    results = run_workers(score_shards, jobs, device=config.device)
    for job, scored in zip(jobs, results, strict=True):
        for shard, shard_scores in zip(job.shards, scored, strict=True):
            for row, part in zip(shard.rows, shard_scores, strict=True):
                out[row] = part
    return out


def score_shards(job: _TeacherJob) -> list[list[list[float]]]:
    """A worker's body: load the model once and score each shard; per shard, per sample, the
    response log-probs."""
    config = job.config
    if config.backend == "vllm":  # one engine call for all the worker's samples
        from sdar_core.teacher.vllm import vllm_response_logprobs

        scored = vllm_response_logprobs(
            job.model_path,
            [seq for shard in job.shards for seq in shard.sequences],
            temperature=job.temperature,
            dtype=config.dtype,
            trust_remote_code=config.trust_remote_code,
        )
        out, start = [], 0
        for shard in job.shards:
            out.append(scored[start : start + len(shard.sequences)])
            start += len(shard.sequences)
        return out
    from sdar_core.models import load_model

    model = load_model(
        job.model_path,
        dtype=config.dtype,
        device=config.device,
        trust_remote_code=config.trust_remote_code,
    )
    total = sum(len(shard.rows) for shard in job.shards)
    with tqdm(total=total, desc="teacher", disable=not config.show_progress) as bar:
        return [
            _hf_logprobs(model, shard, config, job.temperature, job.pad_id, bar.update)
            for shard in job.shards
        ]


def _hf_logprobs(
    model, shard: _Shard, config: TeacherConfig, temperature: float, pad_id: int, on_batch
) -> list[list[float]]:
    from sdar_core.teacher.forward import response_logprobs
    from sdar_core.teacher.prefix import prefix_cached_logprobs

    options: dict[str, object] = dict(
        temperature=temperature,
        batch_tokens=config.batch_tokens,
        pad_id=pad_id,
        chunk_size=config.chunk_size,
        on_batch=on_batch,
    )
    if config.prefix_cache:
        return prefix_cached_logprobs(
            model,
            shard.sequences,
            shard.groups,
            min_prefix_tokens=config.min_prefix_tokens,
            **options,
        )
    return response_logprobs(model, shard.sequences, **options)


def _resolve_algorithm(algorithm: Any) -> Any:
    if algorithm is None or not isinstance(algorithm, str):
        return algorithm
    from sdar_core.algos import get_algorithm

    return get_algorithm(algorithm)


def _read_summary(artifact_dir) -> dict[str, Any]:
    path = Path(artifact_dir) / SUMMARY_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def _skip(trajectories_dir, out_dir, rollout_summary: dict, name: str) -> dict[str, Any]:
    """Copy the unscored artifact to out_dir (atomically) for an algorithm without a teacher."""
    summary = rollout_summary | {"teacher_skipped": True, "algorithm": name}
    rows = read_trajectories(trajectories_dir)
    meta = read_metadata(trajectories_dir)
    metadata = {k: v for k, v in meta.items() if k not in ("schema_version", "kind", "n_rows")}
    write_trajectories(out_dir, rows, kind="trajectories", metadata=metadata, summary=summary)
    return summary


def _gap_quantiles(name: str, gaps: list[float]) -> dict[str, float]:
    """Mean and 10/50/90th percentiles (linear interpolation) of per-token teacher - student
    gaps; none for no tokens."""
    if not gaps:
        return {}
    import numpy as np

    p10, p50, p90 = np.quantile(np.asarray(gaps, dtype=np.float64), [0.1, 0.5, 0.9])
    return {
        f"teacher_gap_{name}_mean": float(np.mean(gaps)),
        f"teacher_gap_{name}_p10": float(p10),
        f"teacher_gap_{name}_p50": float(p50),
        f"teacher_gap_{name}_p90": float(p90),
        f"teacher_gap_{name}_tokens": float(len(gaps)),
    }


def _teacher_summary(rows, teacher, items, seconds: float, algo) -> dict[str, Any]:
    by_outcome: dict[bool, list[float]] = {True: [], False: []}
    won = rows["won"]  # in every trajectory artifact (schema.py)
    columns = zip(teacher, rows["old_logprobs"], rows["response_mask"], won, strict=True)
    for t_row, s_row, mask, episode_won in columns:
        for t, s, m in zip(t_row, s_row, mask, strict=True):
            if m:
                by_outcome[bool(episode_won)].append(t - s)
    gaps = by_outcome[True] + by_outcome[False]
    return (
        _gap_quantiles("won", by_outcome[True])
        | _gap_quantiles("lost", by_outcome[False])
        | {
            "teacher_skipped": False,
            "algorithm": None if algo is None else algo.name,
            "teacher_seconds": seconds,
            "teacher_tokens_scored": sum(len(i.input_ids) for i in items),
            "teacher_mean_skill_tokens": (
                sum(i.n_skill_tokens for i in items) / len(items) if items else 0.0
            ),
            "teacher_mean_gap": sum(gaps) / len(gaps) if gaps else 0.0,
        }
    )
