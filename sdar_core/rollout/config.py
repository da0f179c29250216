"""`RolloutConfig`: every setting of the rollout stage, frozen and validated with fix-it messages.

Defaults follow the reference where it has one (group size 8, 50 ALFWorld steps, a history window
of 2, temperature 1.0); the rest are sized for the tiny CPU model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sdar_core.devices import Device, DtypeName
from sdar_core.errors import ConfigError
from sdar_core.limits import Count, OptionalCount
from sdar_core.rollout.backends.base import SamplingSettings, list_backends
from sdar_core.workers import check_workers

__all__ = ["Layout", "PromptMode", "RolloutConfig"]

Layout = Literal["per_step", "whole_trajectory"]
PromptMode = Literal["window", "full_chat"]


class RolloutConfig(BaseModel):
    """Settings of `generate_rollouts`."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    env: str = Field(default="alfworld", description="environment name (sdar_core.envs.make)")
    split: str | None = Field(default="train", description="game split; None plays every game")
    n_tasks: Count = Field(default=8, description="task instances per round (groups)")
    group_size: Count = Field(default=8, description="members per group, all on the same task")
    max_steps: Count = Field(default=50, description="agent turns before an episode is truncated")
    history_length: Count = Field(default=2, description="past steps in a window prompt")
    layout: Layout = Field(default="per_step", description="training-sample layout")
    prompt_mode: PromptMode = Field(
        default="window",
        description="window: the environment's prompt with the last history_length steps; "
        "full_chat: the whole conversation so far, as one growing token sequence",
    )
    admissible_in_continuation: Literal["full", "delta"] = Field(
        default="delta",
        description="full_chat with an environment that lists actions (ALFWorld): each new user "
        "message gives the change of the admissible list (delta) or repeats it whole (full, "
        "~1.5x the tokens of a whole trajectory); see sdar_core.envs.alfworld.prompts",
    )
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: Count = Field(default=512, description="response token limit per turn")
    max_prompt_tokens: Count = Field(
        default=4096, description="an episode whose next prompt is longer ends (truncated)"
    )
    seed: Count = Field(default=0, description="seeds task choice, episodes and sampling")
    backend: str = Field(default="hf", description="generation backend: hf or vllm")
    device: Device = "cpu"
    dtype: DtypeName = Field(default="float32", description="None keeps the checkpoint's")
    max_batch_size: Count = Field(default=64, description="prompts per forward batch (hf)")
    lora_dir: Path | None = Field(
        default=None,
        description="LoRA adapter of the model (hf: merged at load; vllm: LoRARequest)",
    )
    trust_remote_code: bool = False
    student_sees_skills: bool = Field(
        default=False, description="put retrieved skills in the student prompt (Skill-GRPO)"
    )
    skills_k: Count = Field(
        default=1,
        description="task-specific skills retrieved per group (the bundled libraries hold one "
        "per task type, so 1 is that type's skill; the general skills come on top)",
    )
    workers: Count | Literal["auto"] = Field(
        default="auto",
        description="worker processes, one per GPU (auto: every visible GPU on device cuda, "
        "1 on CPU); see sdar_core.workers",
    )
    shard_groups: OptionalCount = Field(
        default=None,
        description="groups per shard: each shard is played as its own batch of episodes, so "
        "the artifact does not depend on the number of workers; None: the groups split evenly "
        "over the workers (with 1 worker, one batch as before)",
    )
    show_progress: bool = True

    @model_validator(mode="after")
    def _check(self) -> RolloutConfig:
        for name, minimum, fix in (
            ("n_tasks", 1, 8),
            ("group_size", 1, 8),
            ("max_steps", 1, 50),
            ("history_length", 0, 2),
            ("max_new_tokens", 1, 512),
            ("max_prompt_tokens", 1, 4096),
            ("max_batch_size", 1, 64),
            ("seed", 0, 0),
            ("skills_k", 0, 1),
        ):
            if getattr(self, name) < minimum:
                raise ConfigError(
                    f"{name} must be >= {minimum}, got {getattr(self, name)}: set {name} to {fix}"
                )
        check_workers(self.workers)
        if self.shard_groups is not None and self.shard_groups < 1:
            raise ConfigError(
                f"shard_groups must be >= 1, got {self.shard_groups}: set it to None (an even "
                "split over the workers) or a group count"
            )
        self.sampling()  # validates temperature, top_p and max_new_tokens
        if self.backend not in list_backends():
            raise ConfigError(f"unknown backend {self.backend!r}: choose one of {list_backends()}")
        if self.layout == "whole_trajectory" and self.prompt_mode != "full_chat":
            raise ConfigError(
                "layout 'whole_trajectory' trains on the whole conversation, so every turn must be "
                "generated from it: set prompt_mode to 'full_chat' (or layout to 'per_step')"
            )
        return self

    def sampling(self) -> SamplingSettings:
        """The backend's sampling settings."""
        return SamplingSettings(
            temperature=self.temperature, top_p=self.top_p, max_new_tokens=self.max_new_tokens
        )
