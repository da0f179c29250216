"""Options of the ALFWorld environment (one frozen config) and the six task types.

Defaults follow the reference: 50 steps, a history window of 2, reward 10 on the winning step,
<think> required for a valid step.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sdar_core.limits import Count

__all__ = ["SPLITS", "TASK_TYPES", "AlfworldConfig"]

TASK_TYPES: tuple[str, ...] = (
    "pick_and_place_simple",
    "look_at_obj_in_light",
    "pick_clean_then_place_in_recep",
    "pick_heat_then_place_in_recep",
    "pick_cool_then_place_in_recep",
    "pick_two_obj_and_place",
)
SPLITS: tuple[str, ...] = ("train", "valid_seen", "valid_unseen")


class AlfworldConfig(BaseModel):
    """Everything `make("alfworld", **options)` accepts."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    data_dir: Path = Field(description="root holding game folders (official layout)")
    split: str | None = Field(
        default=None,
        description="sub-folder of data_dir to play (train, valid_seen, valid_unseen, or any "
        "folder name); None plays every game folder under data_dir",
    )
    max_steps: Count = Field(default=50, ge=1, description="steps before an episode is truncated")
    history_length: Count = Field(default=2, ge=0, description="past steps shown in the prompt")
    win_reward: float = Field(default=10.0, description="reward on the step that wins")
    require_think: bool = Field(
        default=True, description="a step without <think>…</think> is flagged invalid"
    )
    seed: Count = Field(default=0, description="seeds the per-episode seeds and task draws")
    task_types: tuple[str, ...] = Field(default=TASK_TYPES, description="task types to load")
    hide_help: bool = Field(
        default=True, description="drop the engine's 'help' command from admissible actions"
    )

    @field_validator("task_types")
    @classmethod
    def _known_task_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(TASK_TYPES))
        if unknown or not value:
            raise ValueError(
                f"task_types {unknown or '(empty)'} not supported: choose from {list(TASK_TYPES)}"
            )
        return value

    def game_root(self) -> Path:
        """The folder whose game folders are played."""
        return self.data_dir / self.split if self.split else self.data_dir
