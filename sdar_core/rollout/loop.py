"""The rollout stage: play N tasks x G group members with the policy, write the trajectory artifact.

`generate_rollouts(model_dir, games_dir, out_dir, config, round=r)` picks the round's tasks (the
first `n_tasks` of `env.task_order(r)`, which is seeded by (config.seed, r): rounds see different
tasks, reproducibly), starts G episodes of each (a group), and then, turn by turn, batches the
prompts of every live episode into one generation call, passes the decoded responses to
`env.step` (the environment projects them onto actions and flags invalid ones) and records the
sampled ids and log-probs. Sampling is seeded per (seed, round, turn, episode slot).

Prompts, by `prompt_mode`:
- "window": the environment's own prompt (system + user with the last `history_length` steps),
  rendered by the chat template;
- "full_chat": the first prompt, then each response and the environment's next message appended
  as token ids (`tokens.TurnDelta`), so turn k's prompt is exactly the conversation's prefix up to
  turn k. The environment is built with history_length 0. Its next user message comes from
  `env.chat_prompts()` (ALFWorld: only the new observation and the admissible actions — in full
  or as a change from the previous list, by `admissible_in_continuation` — since the task and the
  rules are already in the chat; by default the last message of the per-step prompt).
An episode whose next prompt would exceed `max_prompt_tokens` ends there, marked truncated; the
environment is still stepped with an empty text until the batch ends, and those steps are ignored.

With `student_sees_skills` (Skill-Prompt, Skill-GRPO), skills retrieved once per group (query: the
task text) go into the system message through the skill builder; without, skills play no part.

Sharding (`config.workers`, `config.shard_groups`; sdar_core.workers): the round's groups are cut
into shards of consecutive groups, the shards are dealt to worker processes in contiguous runs
(one per GPU, each with its own model), and each shard is played as a round of its own
(`play_round(..., groups=shard)`): its episodes are batched together and never with another
shard's. The episodes come back in group order, so the artifact is the one a single worker
writes. Neither a group's task, its episode seeds nor its sampling seeds depend on the shard:
seeds use the episode's slot in the whole round (group x group_size + member). With the hf
backend a prompt's sample can still depend on its batch neighbours through floating-point noise
of the padded forward, so an explicit `shard_groups` (the same batches whatever the number of
workers) gives the same artifact with 1 worker or many (tested on CPU); the default (None) cuts
the groups evenly over the workers, one shard each, which keeps batches as large as possible
(with 1 worker: one batch of every episode, as before sharding existed).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from sdar_core.errors import ArtifactError, ConfigError
from sdar_core.rollout.backends.base import GenerationBackend, get_backend_factory
from sdar_core.rollout.config import RolloutConfig
from sdar_core.rollout.samples import Episode, Turn, build_samples, summarize
from sdar_core.rollout.schema import COLUMNS, write_trajectories
from sdar_core.rollout.tokens import TurnDelta, render_prompt_ids
from sdar_core.workers import blocks, resolve_workers, run_workers, shard_size, split_evenly

__all__ = [
    "choose_tasks",
    "generate_rollouts",
    "load_student_skills",
    "play_round",
    "play_shards",
    "sampling_seed",
    "student_prompt",
]


def sampling_seed(seed: int, round: int, turn: int, slot: int) -> int:
    """A 63-bit seed for one generation, from (seed, round, turn, episode slot)."""
    digest = hashlib.blake2b(f"{seed}/{round}/{turn}/{slot}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def choose_tasks(env: Any, *, n_tasks: int, round: int) -> list[str]:
    """The first n_tasks of env.task_order(round)."""
    order = env.task_order(round)
    if n_tasks > len(order):
        raise ConfigError(
            f"n_tasks={n_tasks} but the environment has only {len(order)} tasks: set n_tasks to "
            f"at most {len(order)} or generate more games"
        )
    return order[:n_tasks]


def check_model_dir(model_dir: str | os.PathLike[str]) -> Path:
    """`model_dir` as a Path, after checking that it is an existing directory."""
    path = Path(model_dir)
    if not path.is_dir():
        raise ArtifactError(
            f"model directory {path} does not exist or is not a directory: pass the directory a "
            "checkpoint was saved to (save_pretrained, build_tiny_model)"
        )
    return path


class _Round:
    """One round's episodes and the prompt bookkeeping of `play_round`."""

    def __init__(
        self, env, backend, tokenizer, config: RolloutConfig, round: int, index, groups
    ) -> None:
        self.env, self.backend, self.tokenizer = env, backend, tokenizer
        self.config, self.round, self.index, self.groups = config, round, index, groups
        self.delta = TurnDelta(tokenizer)
        self.skills: dict[str, list] = {}
        self.episodes: list[Episode] = []
        self.round_slots: list[int] = []  # each episode's slot in the whole round (its seeds)

    def start(self) -> None:
        tasks = choose_tasks(self.env, n_tasks=self.config.n_tasks, round=self.round)
        groups = range(len(tasks)) if self.groups is None else self.groups
        if any(not 0 <= g < len(tasks) for g in groups):
            raise ConfigError(f"groups {list(groups)} are not all in 0..{len(tasks) - 1}")
        size = self.config.group_size
        slots = [(g, m) for g in groups for m in range(size)]
        self.round_slots = [g * size + m for g, m in slots]
        records = self.env.reset(task_ids=[tasks[g] for g, _ in slots])
        for (g, m), record in zip(slots, records, strict=True):
            info = record.info
            episode = Episode(
                group_id=f"r{self.round}-g{g}",
                member=m,
                task_id=info["task_id"],
                episode_seed=int(info["episode_seed"]),
                task_type=info["task_type"],
                task_text=info["task_text"],
            )
            episode.ended = episode.truncated = record.done  # the episode failed to start
            self.episodes.append(episode)

    def prompts(self, turn: int) -> dict[int, tuple[list[int], tuple[dict[str, Any], ...]]]:
        """Prompt ids and messages of every live episode, by slot; ends over-long episodes."""
        out = {}
        for slot, messages in enumerate(self._next_messages()):
            episode = self.episodes[slot]
            if episode.ended or messages is None:
                continue
            if episode.turns and self.config.prompt_mode == "full_chat":
                last = episode.turns[-1]
                ids = [*last.prompt_ids, *last.generation.token_ids]
                ids += self.delta.ids(last.generation.token_ids, messages[-1]["content"])
                rendered = episode.turns[0].messages
            else:
                ids, rendered = self._render(episode, messages)
            if len(ids) > self.config.max_prompt_tokens:
                episode.ended = episode.truncated = True
                continue
            out[slot] = (ids, rendered)
        return out

    def _next_messages(self) -> list[list[dict[str, Any]] | None]:
        if self.config.prompt_mode == "full_chat":
            form = self.config.admissible_in_continuation
            return self.env.chat_prompts(admissible_in_continuation=form)
        return self.env.prompts()

    def _render(self, episode: Episode, messages) -> tuple[list[int], tuple[dict[str, Any], ...]]:
        skills = None
        if self.config.student_sees_skills:
            if episode.group_id not in self.skills:
                query = episode.task_text or episode.task_id
                self.skills[episode.group_id] = self.index.retrieve(query, k=self.config.skills_k)
            skills = self.skills[episode.group_id]
        return student_prompt(
            self.tokenizer, messages, skills, max_prompt_tokens=self.config.max_prompt_tokens
        )

    def record(self, prompts, generations, records) -> None:
        for (slot, (ids, rendered)), gen in zip(prompts.items(), generations, strict=True):
            record, episode = records[slot], self.episodes[slot]
            info = record.info
            episode.turns.append(
                Turn(
                    prompt_ids=tuple(ids),
                    messages=rendered,
                    generation=gen,
                    reward=float(record.reward),
                    invalid_action=bool(info.get("invalid_action")),
                    info={k: info.get(k) for k in ("action", "invalid_reason", "error")},
                )
            )
            if record.done:
                episode.ended, episode.won = True, bool(info.get("won"))
                episode.truncated = bool(info.get("truncated"))


def play_round(
    env: Any,
    backend: GenerationBackend,
    tokenizer: Any,
    config: RolloutConfig,
    *,
    round: int,
    index: Any = None,
    groups: Sequence[int] | None = None,
) -> tuple[list[Episode], int]:
    """Play one round, or with `groups` those groups of it (see the module docstring); the
    episodes and the number of env steps."""
    state = _Round(env, backend, tokenizer, config, round, index, groups)
    state.start()
    env_steps = 0
    bar = tqdm(total=config.max_steps, desc=f"rollout r{round}", disable=not config.show_progress)
    with bar:
        for turn in range(config.max_steps):
            prompts = state.prompts(turn)
            if not prompts:
                break
            slots = state.round_slots
            seeds = [sampling_seed(config.seed, round, turn, slots[slot]) for slot in prompts]
            generations = backend.generate([ids for ids, _ in prompts.values()], seeds=seeds)
            texts = [""] * len(state.episodes)
            for slot, gen in zip(prompts, generations, strict=True):
                texts[slot] = tokenizer.decode(list(gen.token_ids), skip_special_tokens=True)
            records = env.step(texts)
            env_steps += len(prompts)
            state.record(prompts, generations, records)
            bar.update(1)
            bar.set_postfix(live=len(prompts))
    for episode in state.episodes:
        if not episode.ended:  # cannot happen with a BatchEnv's step limit; kept honest
            episode.ended = episode.truncated = True
    return state.episodes, env_steps


def generate_rollouts(
    model_dir: str | os.PathLike[str],
    games_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    config: RolloutConfig,
    *,
    skills_index_dir: str | os.PathLike[str] | None = None,
    round: int = 0,
) -> dict[str, Any]:
    """Play one round with the model in `model_dir` and write the trajectory artifact to `out_dir`.

    Returns the summary (also written as summary.json). See the module docstring.
    """
    if round < 0:
        raise ConfigError(f"round must be >= 0, got {round}: rounds count from 0")
    model_path = check_model_dir(model_dir)
    if config.student_sees_skills and skills_index_dir is None:
        load_student_skills(True, None)  # raises, naming the fix, before any worker starts
    n_workers = resolve_workers(config.workers, config.device)
    shards = blocks(config.n_tasks, shard_size(config.n_tasks, config.shard_groups, n_workers))
    jobs = [
        _RolloutJob(
            model_path,
            Path(games_dir),
            None if skills_index_dir is None else Path(skills_index_dir),
            config,
            round,
            tuple(tuple(shards[i]) for i in part),
        )
        for part in split_evenly(len(shards), n_workers)
    ]
    started = time.perf_counter()
    results = run_workers(play_shards, jobs, device=config.device)
    episodes = [episode for played, _ in results for episode in played]
    env_steps = sum(steps for _, steps in results)
    seconds = time.perf_counter() - started
    samples = build_samples(episodes, layout=config.layout)
    summary = summarize(episodes, seconds=seconds, env_steps=env_steps)
    summary |= {"round": round, "workers": len(jobs)}
    extra = {"round": round, "env_name": config.env}
    rows = {name: [s[name] if name in s else extra[name] for s in samples] for name in COLUMNS}
    metadata = {
        "layout": config.layout,
        "round": round,
        "model_dir": str(model_path),
        "games_dir": str(games_dir),
        "skills_index_dir": None if skills_index_dir is None else str(skills_index_dir),
        # how many workers played is not part of what was played: the same artifact either way
        "config": config.model_dump(mode="json", exclude={"workers"}),
    }
    write_trajectories(out_dir, rows, kind="trajectories", metadata=metadata, summary=summary)
    return summary


@dataclass(frozen=True)
class _RolloutJob:
    """One worker's share of a round: the shards (group indices) it plays, in order."""

    model_path: Path
    games_dir: Path
    skills_index_dir: Path | None
    config: RolloutConfig
    round: int
    shards: tuple[tuple[int, ...], ...]


def play_shards(job: _RolloutJob) -> tuple[list[Episode], int]:
    """A worker's body: load the model once, play each shard as a round of its own; the
    episodes in shard order and the env steps."""
    from sdar_core.envs import make

    config = job.config
    history = config.history_length if config.prompt_mode == "window" else 0
    env = make(
        config.env,
        data_dir=job.games_dir,
        split=config.split,
        max_steps=config.max_steps,
        history_length=history,
        seed=config.seed,
    )
    episodes: list[Episode] = []
    env_steps = 0
    try:
        choose_tasks(env, n_tasks=config.n_tasks, round=job.round)  # fails before the model loads
        from sdar_core.models import load_tokenizer

        index = load_student_skills(config.student_sees_skills, job.skills_index_dir)
        tokenizer = load_tokenizer(job.model_path, trust_remote_code=config.trust_remote_code)
        backend = _make_backend(job.model_path, config)
        try:
            for shard in job.shards:
                played, steps = play_round(
                    env, backend, tokenizer, config, round=job.round, index=index, groups=shard
                )
                episodes += played
                env_steps += steps
        finally:
            backend.close()
    finally:
        env.close()
    return episodes, env_steps


def student_prompt(
    tokenizer: Any, messages, skills: Sequence[Any] | None, *, max_prompt_tokens: int
) -> tuple[list[int], tuple[dict[str, Any], ...]]:
    """The student's prompt ids and rendered messages. With `skills` (Skill-Prompt, Skill-GRPO),
    they go into the system message through the skill builder, as many as fit in
    `max_prompt_tokens`; a prompt already over the limit is returned without skills."""
    ids = render_prompt_ids(tokenizer, messages)
    if skills is None or len(ids) > max_prompt_tokens:
        return ids, tuple(dict(m) for m in messages)
    from sdar_core.skills import build_teacher_inputs

    built = build_teacher_inputs(
        tokenizer, messages, [], skills, max_prompt_tokens=max_prompt_tokens
    )
    return list(built.input_ids), tuple(built.messages)


def load_student_skills(student_sees_skills: bool, skills_index_dir) -> Any:
    """The skill index for skills in the student prompt; None when the student sees none."""
    if not student_sees_skills:
        return None
    if skills_index_dir is None:
        raise ConfigError(
            "student_sees_skills is set but no skills_index_dir was given: pass the skill index "
            "(sdar index-skills) or set student_sees_skills to False"
        )
    from sdar_core.skills import load_index

    return load_index(skills_index_dir)


def _make_backend(model_path: Path, config: RolloutConfig) -> GenerationBackend:
    factory = get_backend_factory(config.backend)
    options: dict[str, Any] = {
        "settings": config.sampling(),
        "device": config.device,
        "dtype": config.dtype,
        "max_batch_size": config.max_batch_size,
        "lora_dir": config.lora_dir,
        "trust_remote_code": config.trust_remote_code,
        "seed": config.seed,
    }
    return factory(model_path, **options)
