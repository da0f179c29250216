"""ALFWorld as a `BatchEnv`: every game folder under a data root, played on the real engine.

`make("alfworld", data_dir=PATH, split="valid_seen")` finds the game folders (official layout:
`traj_data.json` + `game.tw-pddl`), and plays a batch of them on TextWorld's PDDL engine with
alfworld's wrappers. Model text is projected onto a command (see `projection.py`); the command is
sent to the engine even when inadmissible (the engine answers "Nothing happens."), and the step is
flagged. Reward is `win_reward` (10, as in the reference) on the step that wins, else 0; success
is `info["won"]`. The invalid-action penalty is left to the trainer.

Prompts: `prompts()` gives the window prompt of every live episode (system + one user message with
the last `history_length` steps). `chat_prompts()` serves full-chat conversations: the messages
to append for each live episode's next step — the first prompt before any action, then one short
user message with only the new observation and the admissible actions (`build_continuation`),
in full or as a change from the previous message's list (`admissible_in_continuation`, see
prompts.py for the trade-off).

Info per step, besides the base keys: `admissible_actions` (the engine's list, without "help"
unless `hide_help=False`), `action` (the projected command or None), `invalid_reason`, and
`goal` (object / parent / toggle kinds from traj_data, used by the expert).
"""

from __future__ import annotations

from typing import Any

from sdar_core.envs.alfworld.config import AlfworldConfig
from sdar_core.envs.alfworld.engine import EngineState, GameEngine
from sdar_core.envs.alfworld.games import GameSpec, discover_games
from sdar_core.envs.alfworld.projection import project_action
from sdar_core.envs.alfworld.prompts import ADMISSIBLE_FORMS, build_continuation, build_messages
from sdar_core.envs.base import BatchEnv, EpisodeHistory, EpisodeStart, StepOutcome
from sdar_core.errors import ConfigError

__all__ = ["AlfworldEnv", "task_text_of"]


def task_text_of(observation: str) -> str:
    """The sentence after the last "Your task is to:" (without its final period)."""
    parts = observation.rsplit("Your task is to:", 1)
    if len(parts) < 2:
        return ""
    return parts[1].strip().rstrip(".").strip()


class AlfworldEnv(BatchEnv):
    """A batch of ALFWorld episodes; see the module docstring."""

    name = "alfworld"

    def __init__(self, config: AlfworldConfig) -> None:
        super().__init__(max_steps=config.max_steps, seed=config.seed)
        self.config = config
        specs = discover_games(config.game_root(), config.task_types)
        self._specs: dict[str, GameSpec] = {s.task_id: s for s in specs}
        self._task_ids = tuple(sorted(self._specs))
        self._engines: list[GameEngine] = []
        self._slots: dict[int, tuple[GameSpec, tuple[str, ...]]] = {}
        self._shown_before: dict[int, tuple[str, ...]] = {}  # admissible before the last step
        from sdar_core.envs.alfworld.generator import world_of
        from sdar_core.envs.alfworld.miniature import WORLD_NAME
        from sdar_core.envs.alfworld.miniature2 import WORLD_NAME as WORLD2_NAME

        # the miniature worlds' games carry their own short prompt (miniature.py)
        self.compact_prompt = world_of(config.data_dir) in (WORLD_NAME, WORLD2_NAME)

    @property
    def task_ids(self) -> tuple[str, ...]:
        return self._task_ids

    def spec(self, task_id: str) -> GameSpec:
        """The validated description of one game."""
        return self._specs[task_id]

    def _task_type(self, task_id: str) -> str:
        return self._specs[task_id].task_type

    def _engine(self, slot: int) -> GameEngine:
        while len(self._engines) <= slot:
            self._engines.append(GameEngine())
        return self._engines[slot]

    def _admissible(self, state: EngineState) -> tuple[str, ...]:
        if self.config.hide_help:
            return tuple(a for a in state.admissible if a != "help")
        return state.admissible

    def _start(self, slot: int, task_id: str, seed: int) -> EpisodeStart:
        spec = self._specs[task_id]
        self._slots.pop(slot, None)
        self._shown_before.pop(slot, None)
        state = self._engine(slot).reset(spec.game_file)
        admissible = self._admissible(state)
        self._slots[slot] = (spec, admissible)
        return EpisodeStart(
            observation=state.feedback,
            task_type=self._task_type(task_id),
            task_text=task_text_of(state.feedback),
            extra={
                "admissible_actions": list(admissible),
                "goal": spec.goal(),
                "action": None,
                "invalid_reason": None,
            },
        )

    def _advance(self, slot: int, text: str) -> StepOutcome:
        spec, admissible = self._slots[slot]
        projection = project_action(text, admissible, require_think=self.config.require_think)
        state = self._engine(slot).step(projection.action or "")
        new_admissible = self._admissible(state)
        self._slots[slot] = (spec, new_admissible)
        self._shown_before[slot] = admissible
        return StepOutcome(
            observation=state.feedback,
            action=projection.action,
            reward=self.config.win_reward if state.won else 0.0,
            won=state.won,
            invalid_action=projection.invalid,
            extra={
                "admissible_actions": list(new_admissible),
                "goal": spec.goal(),
                "action": projection.action,
                "invalid_reason": projection.invalid_reason,
            },
        )

    def _prompt(self, history: EpisodeHistory, info: dict[str, Any]) -> list[dict[str, str]]:
        if self.compact_prompt:
            from sdar_core.envs.alfworld.miniature import build_compact_messages

            return build_compact_messages(
                history, info["admissible_actions"], history_length=self.config.history_length
            )
        return build_messages(
            history, info["admissible_actions"], history_length=self.config.history_length
        )

    def chat_prompts(
        self, *, admissible_in_continuation: str = "delta"
    ) -> list[list[dict[str, str]] | None]:
        """Per episode, the messages a full-chat conversation appends for its next step; None for
        finished episodes. Before the first action: the whole first prompt (system + user, with
        no history); after it: one user message with what is new (`build_continuation`), its
        admissible actions "full" or as a "delta" from the previous message's list."""
        if admissible_in_continuation not in ADMISSIBLE_FORMS:
            raise ConfigError(
                f"admissible_in_continuation must be one of {list(ADMISSIBLE_FORMS)}, got "
                f"{admissible_in_continuation!r}: use 'full' or 'delta'"
            )
        delta = admissible_in_continuation == "delta"
        out: list[list[dict[str, str]] | None] = []
        for slot, ep in enumerate(self._episodes):
            if ep.record.done:
                out.append(None)
                continue
            history, admissible = self._history(ep), ep.record.info["admissible_actions"]
            if history.turns:
                previous = self._shown_before.get(slot) if delta else None
                out.append([build_continuation(history, admissible, previous_admissible=previous)])
            else:
                out.append(build_messages(history, admissible, history_length=0))
        return out

    def close(self) -> None:
        for engine in self._engines:
            engine.close()
        self._engines = []
        self._slots = {}
        self._shown_before = {}
