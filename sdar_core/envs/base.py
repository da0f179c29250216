"""The batched environment interface every benchmark implements.

A `BatchEnv` plays a batch of episodes side by side. `reset(task_ids=…)` or `reset(seeds=…)` starts
one episode per entry; `step(texts)` takes one raw model text per episode and returns one
`StepRecord` per episode (observation, reward, done, info). The environment, not the caller, turns
model text into an action (the benchmark's projection), so a trainer never parses actions itself.

What the base class does for every benchmark, so that subclasses only talk to their engine:
- episodes that are already done ignore further texts and return their last record again
  (reward 0) — callers may pass any placeholder for them;
- an exception raised inside one episode ends that episode only: `done=True`,
  `info["truncated"]=True`, `info["error"]=repr(exc)`; the rest of the batch goes on;
- the step limit ends an episode with `info["truncated"]=True`;
- it records the full raw history (initial observation, then model text, action and observation
  per step) for whole-trajectory chats, and builds the per-step prompt through the subclass.

Every info carries at least: `won`, `task_type`, `task_id`, `invalid_action`, `step`, `truncated`,
`task_text`, `error`; benchmarks with a finite action set add `admissible_actions`.
`task_type_of(task_id)` gives a task's `task_type` without starting it (for stratified
validation subsets); each benchmark starts its episodes with the same lookup.
Benchmark-specific code (parsing, prompts, engines) stays out of this module.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from sdar_core.errors import ConfigError

__all__ = [
    "BatchEnv",
    "play",
    "EpisodeHistory",
    "EpisodeStart",
    "Policy",
    "StepOutcome",
    "StepRecord",
    "Turn",
    "stratified_task_ids",
]


@dataclass(frozen=True)
class StepRecord:
    """What one episode returns after `reset` or `step`."""

    observation: str
    reward: float
    done: bool
    info: dict[str, Any]


@dataclass(frozen=True)
class Turn:
    """One step of an episode as it happened: the raw model text, the action it was projected
    to (None when the text held no action) and what the environment answered."""

    model_text: str
    action: str | None
    observation: str
    reward: float
    invalid_action: bool


@dataclass(frozen=True)
class EpisodeHistory:
    """The full raw history of one episode (for whole-trajectory multi-turn chats)."""

    task_id: str
    task_text: str
    initial_observation: str
    turns: tuple[Turn, ...]


@dataclass(frozen=True)
class EpisodeStart:
    """What a subclass returns when it starts one episode."""

    observation: str
    task_type: str
    task_text: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepOutcome:
    """What a subclass returns for one step of one episode."""

    observation: str
    action: str | None
    reward: float
    won: bool
    invalid_action: bool
    extra: dict[str, Any] = field(default_factory=dict)
    # The episode ends here without a win (a WebShop purchase, a Search-QA answer): done, and not
    # truncated. Winning always ends an episode; the step limit ends it as truncated.
    ended: bool = False


class Policy(Protocol):
    """Anything that maps the current records of a batch to one model text per episode."""

    def __call__(self, records: Sequence[StepRecord]) -> list[str]: ...


@dataclass
class _Episode:
    """Mutable bookkeeping for one batch slot (private to BatchEnv)."""

    task_id: str
    seed: int
    start: EpisodeStart
    record: StepRecord
    turns: list[Turn] = field(default_factory=list)


class BatchEnv(ABC):
    """A batch of episodes of one benchmark, stepped together.

    Subclasses implement `_start` (begin one episode in a slot), `_advance` (apply one model text
    to one episode) and `_prompt` (the chat for one live episode); the base class owns batching,
    error isolation, step limits and histories.
    """

    def __init__(self, *, max_steps: int, seed: int) -> None:
        self.max_steps = max_steps
        self.seed = seed
        self._episodes: list[_Episode] = []
        # (task_ids, the same as a set): membership tests without rebuilding the set per call
        self._known_ids: tuple[tuple[str, ...], frozenset[str]] | None = None

    # ---- to implement -------------------------------------------------------------------------
    @property
    @abstractmethod
    def task_ids(self) -> tuple[str, ...]:
        """Every task this environment can play, in a fixed (sorted) order."""

    def _task_type(self, task_id: str) -> str:
        """The task type of a known `task_id`; `_start` must report the same in its EpisodeStart.
        Not abstract, so that engine-less fakes need not define it; every benchmark does."""
        raise NotImplementedError(
            f"{type(self).__name__} does not say task types before reset: implement _task_type"
        )

    @abstractmethod
    def _start(self, slot: int, task_id: str, seed: int) -> EpisodeStart:
        """Begin an episode of `task_id` in batch slot `slot`."""

    @abstractmethod
    def _advance(self, slot: int, text: str) -> StepOutcome:
        """Apply one raw model text to the episode in `slot`."""

    @abstractmethod
    def _prompt(self, history: EpisodeHistory, info: dict[str, Any]) -> list[dict[str, str]]:
        """Chat messages (system + user) asking the policy for the next step of one episode."""

    def _tasks_for_seeds(self, seeds: Sequence[int]) -> list[str]:
        """The task played for each reset seed: a uniform draw seeded by (env seed, seed)."""
        ids = self.task_ids
        draws = [np.random.default_rng([self.seed, int(s)]).integers(len(ids)) for s in seeds]
        return [ids[int(d)] for d in draws]

    def close(self) -> None:  # noqa: B027  (optional hook, not abstract)
        """Release engine resources (no-op by default)."""

    # ---- public API ---------------------------------------------------------------------------
    def episode_seed(self, task_id: str) -> int:
        """The seed of an episode of `task_id`: a hash of (env seed, task id), never of the batch
        position, so a task plays the same whatever batch it is in."""
        digest = hashlib.blake2b(f"{self.seed}\x00{task_id}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "little") >> 1

    def task_type_of(self, task_id: str) -> str:
        """The `task_type` that the info of an episode of `task_id` carries, known before reset.
        An unknown id raises the ConfigError that `reset` gives."""
        self._require_known([task_id])
        return self._task_type(task_id)

    def task_order(self, epoch: int = 0) -> list[str]:
        """Training order: a permutation of the sorted task ids seeded by (env seed, epoch).
        Evaluation plays a subset stratified by `task_type_of` (`evaluation.validation_tasks`),
        which depends on nothing else."""
        ids = self.task_ids
        perm = np.random.default_rng([self.seed, int(epoch)]).permutation(len(ids))
        return [ids[i] for i in perm]

    @property
    def batch_size(self) -> int:
        return len(self._episodes)

    def reset(
        self, task_ids: Sequence[str] | None = None, seeds: Sequence[int] | None = None
    ) -> list[StepRecord]:
        """Start one episode per task id (repeats allowed, e.g. a GRPO group) or per seed."""
        chosen = self._resolve_tasks(task_ids, seeds)
        self._episodes = []
        for slot, task_id in enumerate(chosen):
            seed = self.episode_seed(task_id)
            self._episodes.append(self._start_safely(slot, task_id, seed))
        return [ep.record for ep in self._episodes]

    def step(self, texts: Sequence[str]) -> list[StepRecord]:
        """Apply one model text per episode; finished episodes ignore theirs."""
        if len(texts) != len(self._episodes):
            raise ConfigError(
                f"step got {len(texts)} texts for a batch of {len(self._episodes)} episodes: "
                "pass exactly one text per episode (any placeholder for finished ones)"
            )
        out = []
        for slot, (ep, text) in enumerate(zip(self._episodes, texts, strict=True)):
            if ep.record.done:
                ep.record = replace(ep.record, reward=0.0)
            else:
                ep.record = self._step_safely(slot, ep, text)
            out.append(ep.record)
        return out

    def records(self) -> list[StepRecord]:
        """The latest record of every episode in the batch."""
        return [ep.record for ep in self._episodes]

    def histories(self) -> list[EpisodeHistory]:
        """The full raw history of every episode in the batch."""
        return [self._history(ep) for ep in self._episodes]

    def prompts(self) -> list[list[dict[str, str]] | None]:
        """Per episode, the chat asking for its next step; None for finished episodes."""
        return [
            None if ep.record.done else self._prompt(self._history(ep), ep.record.info)
            for ep in self._episodes
        ]

    def chat_prompts(
        self, *, admissible_in_continuation: str = "delta"
    ) -> list[list[dict[str, str]] | None]:
        """Per episode, the messages a full-chat conversation appends for its next step; None for
        finished episodes. By default the per-step prompt (whose last message the rollout
        appends); benchmarks with shorter continuations override it, and those that list
        admissible actions honour `admissible_in_continuation` ("full" or "delta")."""
        return self.prompts()

    def __enter__(self) -> BatchEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- internals ----------------------------------------------------------------------------
    def _resolve_tasks(
        self, task_ids: Sequence[str] | None, seeds: Sequence[int] | None
    ) -> list[str]:
        if (task_ids is None) == (seeds is None):
            raise ConfigError(
                "reset needs exactly one of task_ids or seeds: pass task_ids=[...] to play "
                "given tasks or seeds=[...] to draw one task per seed"
            )
        if seeds is not None:
            return self._tasks_for_seeds(list(seeds))
        self._require_known(task_ids)
        return list(task_ids)

    def _require_known(self, task_ids: Sequence[str]) -> None:
        """Raise a ConfigError naming those of `task_ids` that this environment does not have."""
        ids = self.task_ids
        if self._known_ids is None or self._known_ids[0] is not ids:  # rebuilt if ids change
            self._known_ids = (ids, frozenset(ids))
        known = self._known_ids[1]
        unknown = [t for t in task_ids if t not in known]
        if unknown:
            raise ConfigError(
                f"unknown task ids {unknown[:5]}: use ids from env.task_ids "
                f"({len(known)} tasks, e.g. {sorted(known)[:3]})"
            )

    def _history(self, ep: _Episode) -> EpisodeHistory:
        return EpisodeHistory(
            task_id=ep.task_id,
            task_text=ep.start.task_text,
            initial_observation=ep.start.observation,
            turns=tuple(ep.turns),
        )

    def _base_info(self, task_id: str, seed: int, start: EpisodeStart, step: int) -> dict[str, Any]:
        return {
            "task_id": task_id,
            "episode_seed": seed,
            "task_type": start.task_type,
            "task_text": start.task_text,
            "step": step,
            "won": False,
            "invalid_action": False,
            "truncated": False,
            "error": None,
        }

    def _start_safely(self, slot: int, task_id: str, seed: int) -> _Episode:
        try:
            start = self._start(slot, task_id, seed)
        except Exception as exc:  # one broken episode must not kill the batch
            start = EpisodeStart(observation="", task_type="unknown", task_text="")
            failed = {"truncated": True, "error": repr(exc)}
            info = self._base_info(task_id, seed, start, 0) | failed
            return _Episode(task_id, seed, start, StepRecord("", 0.0, True, info))
        info = self._base_info(task_id, seed, start, 0) | start.extra
        return _Episode(task_id, seed, start, StepRecord(start.observation, 0.0, False, info))

    def _step_safely(self, slot: int, ep: _Episode, text: str) -> StepRecord:
        step = ep.record.info["step"] + 1
        info = self._base_info(ep.task_id, ep.seed, ep.start, step)
        try:
            outcome = self._advance(slot, text)
        except Exception as exc:  # end this episode only, and say why
            info |= {"truncated": True, "error": repr(exc), "won": False}
            ep.turns.append(Turn(text, None, "", 0.0, True))
            return StepRecord("", 0.0, True, info)
        finished = outcome.won or outcome.ended
        truncated = not finished and step >= self.max_steps
        info |= outcome.extra | {
            "won": outcome.won,
            "invalid_action": outcome.invalid_action,
            "truncated": truncated,
        }
        ep.turns.append(
            Turn(text, outcome.action, outcome.observation, outcome.reward, outcome.invalid_action)
        )
        done = finished or truncated
        return StepRecord(outcome.observation, outcome.reward, done, info)


def play(
    env: BatchEnv,
    policy: Policy,
    *,
    task_ids: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
) -> list[StepRecord]:
    """Run `policy` on a fresh batch until every episode is done; the final records."""
    records = env.reset(task_ids=task_ids, seeds=seeds)
    while not all(r.done for r in records):
        records = env.step(policy(records))
    return records


def stratified_task_ids(env: BatchEnv, n: int) -> list[str]:
    """The first `n` of the round-robin over task types (each type's ids sorted, types sorted by
    name): the first task of every type, then the second of every type that has one, and so on.
    Per-type counts differ by at most 1 until a type runs out, the subset for n is a prefix of the
    one for n + 1, and n beyond the number of tasks gives every task (in the round-robin order).
    A sorted prefix would not do: ids sort by task type (Search-QA's by data source)."""
    by_type: dict[str, list[str]] = {}
    for task in sorted(env.task_ids):
        by_type.setdefault(env.task_type_of(task), []).append(task)
    columns = [by_type[name] for name in sorted(by_type)]
    rounds = max((len(column) for column in columns), default=0)
    return [c[i] for i in range(rounds) for c in columns if i < len(c)][:n]
