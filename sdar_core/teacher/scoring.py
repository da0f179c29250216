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

`teacher_logprobs` is 0.0 on environment tokens (response_mask 0), like `old_logprobs`.
"""

from __future__ import annotations

import json
import os
import time
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

__all__ = ["score_teacher"]


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
        "config": config.model_dump(mode="json"),
        "index_dir": str(index_dir),
        "model_dir": str(model_path),
        "temperature": temperature,
    }
    write_trajectories(
        out_dir, columns, kind="scored_trajectories", metadata=metadata, summary=summary
    )
    return summary


def _score(
    model_path: Path, items, groups, config: TeacherConfig, *, temperature: float, pad_id: int
):
    sequences = [(item.input_ids, item.response_start) for item in items]
    if config.backend == "vllm":
        from sdar_core.teacher.vllm import vllm_response_logprobs

        return vllm_response_logprobs(
            model_path,
            sequences,
            temperature=temperature,
            dtype=config.dtype,
            trust_remote_code=config.trust_remote_code,
        )
    from sdar_core.models import load_model
    from sdar_core.teacher.forward import response_logprobs
    from sdar_core.teacher.prefix import prefix_cached_logprobs

    model = load_model(
        model_path,
        dtype=config.dtype,
        device=config.device,
        trust_remote_code=config.trust_remote_code,
    )
    options = dict(
        temperature=temperature,
        batch_tokens=config.batch_tokens,
        pad_id=pad_id,
        chunk_size=config.chunk_size,
    )
    with tqdm(total=len(items), desc="teacher", disable=not config.show_progress) as bar:
        if config.prefix_cache:
            return prefix_cached_logprobs(
                model,
                sequences,
                groups,
                min_prefix_tokens=config.min_prefix_tokens,
                on_batch=bar.update,
                **options,
            )
        return response_logprobs(model, sequences, on_batch=bar.update, **options)


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
