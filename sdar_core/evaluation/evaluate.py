"""`evaluate(model_dir, games_dir, out_path, config, skills_index_dir=None)`: play a fixed
validation set and write the results as a JSON artifact.

The validation set (`validation_tasks`) is every task of `split` in sorted order, or with
`n_tasks` a subset stratified by task type: the sorted ids grouped by `env.task_type_of`, taken
round-robin across the types (sorted by name) until `n_tasks` are chosen, in that interleaved
order. It depends only on the game folders. A sorted prefix would not do: ids sort by task type
(Search-QA by data source), so the first 12 of the shipped Search-QA questions cover 2 of its 7
data sources, and per-task-type results are a headline output. Each of the k runs plays every task
once, in batches of `batch_size` episodes; a run's seed is `config.seed + run`. With the model,
decoding is greedy (k must be 1) or sampled with one seed per (run seed, turn, task index); with
`policy="expert"` the exploring expert plays (the upper bound), with `policy="random"` a
uniformly random admissible action (seed `config.seed + run`). Nothing depends on batch size or
batch position, so two runs of the same config give identical results, whatever the batching.

With `student_sees_skills` (Skill-Prompt, Skill-GRPO) the model's prompts are built as the rollout
loop builds them (`rollout.loop.student_prompt`): skills retrieved once per task (query: the task
text, so the same skills for the same task) go into the system message, as many as fit in
`max_prompt_tokens`. The scripted policies read no prompt and ignore skills.

Workers (`config.workers`, one per GPU; sdar_core.workers): the batches, in order (run by run,
tasks in validation order), are dealt to the workers in contiguous runs; each worker loads the
model once and plays its batches, and the episodes are merged in batch order, so the JSON is the
one a single worker writes. A batch holds `min(batch_size, ceil(tasks / workers))` tasks, so that
every worker gets some; results do not depend on batching (above), and with `batch_size` at most
tasks / workers the batches themselves are the same for any number of workers.

The artifact (written to a temporary file and renamed) holds the config, the metrics of the
environment's registered metrics function (flat `{name: float}`, KFP-style) and every episode
(task, run, won, steps, invalid actions, reward, actions, the retrieved skills' names, the
model's text of every turn unless `keep_texts` is off, and a SHA-256 of those texts, so two
evaluations can be compared text for text even without them).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from sdar_core.envs import stratified_task_ids
from sdar_core.errors import ConfigError
from sdar_core.evaluation.config import EvalConfig
from sdar_core.evaluation.metrics import EVAL_METRICS
from sdar_core.evaluation.policies import ModelPolicy, load_eval_model
from sdar_core.rollout.loop import load_student_skills, student_prompt
from sdar_core.workers import blocks, resolve_workers, run_workers, split_evenly

__all__ = ["eval_batches", "evaluate", "play_batches", "validation_tasks", "write_results"]


def validation_tasks(env: Any, n_tasks: int | None) -> list[str]:
    """The tasks evaluation plays: None, every task id in sorted order; else the first `n_tasks`
    of the round-robin over task types (`sdar_core.envs.stratified_task_ids`)."""
    tasks = list(env.task_ids)
    if not tasks:
        raise ConfigError("the validation split has no games: generate games or pick a split")
    return tasks if n_tasks is None else stratified_task_ids(env, n_tasks)


def evaluate(
    model_dir: str | os.PathLike[str] | None,
    games_dir: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    config: EvalConfig,
    *,
    skills_index_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Evaluate (module docstring); returns {"config", "metrics", "episodes"}."""
    metrics_fn = EVAL_METRICS.get(config.env)
    if config.policy == "model" and model_dir is None:
        raise ConfigError("policy='model' needs model_dir: pass a checkpoint directory")
    with_skills = config.student_sees_skills and config.policy == "model"
    if with_skills and skills_index_dir is None:
        load_student_skills(True, None)  # raises, naming the fix, before any worker starts
    n_workers = resolve_workers(config.workers, config.device)
    jobs = [
        _EvalJob(
            None if model_dir is None else Path(model_dir),
            Path(games_dir),
            Path(skills_index_dir) if with_skills else None,
            config,
            worker,
            n_workers,
        )
        for worker in range(n_workers)
    ]
    played = run_workers(play_batches, jobs, device=config.device)
    episodes = [episode for part in played for episode in part]
    results = {
        "config": config.model_dump(mode="json", exclude={"workers"}),  # not part of the result
        "model_dir": None if model_dir is None else str(model_dir),
        "skills_index_dir": str(skills_index_dir) if with_skills else None,
        "metrics": metrics_fn(episodes, config.k),
        "episodes": episodes,
    }
    write_results(Path(out_path), results)
    return results


def eval_batches(n_tasks: int, config: EvalConfig, n_workers: int) -> list[tuple[int, range]]:
    """Every (run, task indices) batch, in order: run by run, tasks in validation order, at
    most `batch_size` and at most ceil(tasks / workers) tasks each."""
    size = min(config.batch_size, math.ceil(n_tasks / n_workers))
    return [(run, chunk) for run in range(config.k) for chunk in blocks(n_tasks, size)]


@dataclass(frozen=True)
class _EvalJob:
    """Worker `worker` of `n_workers`, and what it needs to play its share of the batches."""

    model_dir: Path | None
    games_dir: Path
    skills_index_dir: Path | None
    config: EvalConfig
    worker: int
    n_workers: int


def play_batches(job: _EvalJob) -> list[dict[str, Any]]:
    """A worker's body: find the validation tasks, take the worker's contiguous share of the
    batches, load the policy once and play them; the episodes in batch order. Each worker finds
    the tasks itself (they depend only on the game folders), so the stage's process never builds
    an environment."""
    config = job.config
    with _make_env(job.games_dir, config) as env:
        tasks = validation_tasks(env, config.n_tasks)
        batches = eval_batches(len(tasks), config, job.n_workers)
        parts = split_evenly(len(batches), job.n_workers)
        if job.worker >= len(parts):  # fewer batches than workers
            return []
        mine = [batches[i] for i in parts[job.worker]]
        index = load_student_skills(job.skills_index_dir is not None, job.skills_index_dir)
        actor = _actor(job.model_dir, config)
        episodes: list[dict[str, Any]] = []
        total = sum(len(chunk) for _, chunk in mine)
        with tqdm(total=total, desc="evaluate", disable=not config.show_progress) as bar:
            for run, chunk in mine:
                episodes += _play(env, actor, index, tasks, list(chunk), run, config)
                bar.update(len(chunk))
    return episodes


def _make_env(games_dir: Path, config: EvalConfig) -> Any:
    from sdar_core.envs import make

    return make(
        config.env,
        data_dir=games_dir,
        split=config.split,
        max_steps=config.max_steps,
        history_length=config.history_length,
        seed=config.seed,
    )


def _actor(model_dir, config: EvalConfig) -> Any:
    if config.policy == "model":
        return ModelPolicy(*load_eval_model(model_dir, config), config)
    return None


def _play(env, actor, index, tasks: list[str], chunk: list[int], run: int, config: EvalConfig):
    """Play tasks[chunk] once; one result dict per episode."""
    records = env.reset(task_ids=[tasks[i] for i in chunk])
    skills = _retrieve(index, records, config)
    policy = _scripted(config, run)
    turn = 0
    while not all(r.done for r in records):
        if policy is not None:
            texts = policy(records)
        else:
            texts = _model_texts(env, actor, skills, chunk, run, turn, config)
        records = env.step(texts)
        turn += 1
    out = []
    for slot, (i, record, history) in enumerate(zip(chunk, records, env.histories(), strict=True)):
        texts = [t.model_text for t in history.turns]
        out.append(
            {
                "task_id": tasks[i],
                "task_type": record.info["task_type"],
                "run": run,
                "won": bool(record.info["won"]),
                "steps": len(history.turns),
                "invalid_actions": sum(t.invalid_action for t in history.turns),
                "reward": float(sum(t.reward for t in history.turns)),
                "webshop_reward": record.info.get("webshop_reward"),  # WebShop's score in [0, 1]
                "actions": [t.action for t in history.turns],
                "skills": [s.name for s in skills[slot] or ()],
                "texts": texts if config.keep_texts else None,
                "texts_sha256": hashlib.sha256("\x00".join(texts).encode()).hexdigest(),
            }
        )
    return out


def _retrieve(index, records, config: EvalConfig) -> list[list[Any] | None]:
    """Each episode's skills (query: its task text), or None per episode without an index."""
    if index is None:
        return [None] * len(records)
    queries = [r.info.get("task_text") or r.info["task_id"] for r in records]
    return [index.retrieve(q, k=config.skills_k) for q in queries]


def _scripted(config: EvalConfig, run: int) -> Any:
    if config.policy == "expert":
        from sdar_core.train.sft import EXPERTS

        return EXPERTS.get(config.env)()
    if config.policy == "random":
        from sdar_core.evaluation.policies import RANDOM_POLICIES

        return RANDOM_POLICIES.get(config.env)(seed=config.seed + run)
    return None


def _model_texts(env, actor: ModelPolicy, skills, chunk, run, turn, config) -> list[str]:
    texts = [""] * len(chunk)
    live = [(slot, msgs) for slot, msgs in enumerate(env.prompts()) if msgs is not None]
    budget = config.max_prompt_tokens
    prompts = [
        student_prompt(actor.tokenizer, msgs, skills[slot], max_prompt_tokens=budget)[0]
        for slot, msgs in live
    ]
    generated = actor.texts(
        prompts,
        run_seed=config.seed + run,
        turn=turn,
        task_indices=[chunk[slot] for slot, _ in live],
    )
    for (slot, _), text in zip(live, generated, strict=True):
        texts[slot] = text
    return texts


def write_results(path: Path, data: dict[str, Any]) -> None:
    """Write an evaluation's results JSON to `path` (temp file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
