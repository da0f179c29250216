"""`EvalConfig`: settings of `evaluate`, frozen and validated with fix-it messages."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sdar_core.devices import Device, DtypeName
from sdar_core.errors import ConfigError
from sdar_core.limits import Count, OptionalCount
from sdar_core.workers import check_workers

__all__ = ["EvalConfig"]


class EvalConfig(BaseModel):
    """Settings of `evaluate`. The validation set is the sorted task ids of `split`, or with
    `n_tasks` a subset stratified by task type (`validation_tasks`), so it depends on neither
    `batch_size` nor anything random."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    env: str = "alfworld"
    split: str | None = Field(default="valid_seen", description="game split; None: every game")
    n_tasks: OptionalCount = Field(
        default=None,
        description="n tasks taken round-robin across task types (sorted ids); None: all",
    )
    policy: Literal["model", "expert", "random"] = Field(
        default="model", description="model: the checkpoint; expert: upper bound; random: baseline"
    )
    decoding: Literal["greedy", "sample"] = "greedy"
    k: Count = Field(default=1, description="runs with different seeds (avg@k)")
    temperature: float = Field(default=1.0, description="sampling temperature (decoding=sample)")
    top_p: float = 1.0
    max_new_tokens: Count = 512
    max_steps: Count = 50
    history_length: Count = 2
    batch_size: Count = Field(default=16, description="episodes played side by side")
    seed: Count = 0
    student_sees_skills: bool = Field(
        default=False,
        description="retrieved skills in the prompt (Skill-Prompt, Skill-GRPO); needs an index",
    )
    skills_k: Count = Field(default=1, description="task-specific skills retrieved per task")
    max_prompt_tokens: Count = Field(
        default=4096, description="budget of prompt + skills; skills that do not fit are dropped"
    )
    device: Device = "cpu"
    dtype: DtypeName = "float32"
    show_progress: bool = True
    keep_texts: bool = Field(
        default=True, description="keep each turn's model text in the results JSON"
    )
    workers: Count | Literal["auto"] = Field(
        default="auto",
        description="worker processes, one per GPU (auto: every visible GPU on device cuda, "
        "1 on CPU); batches shrink to tasks / workers so that every worker has some",
    )

    @model_validator(mode="after")
    def _check(self) -> EvalConfig:
        for name, minimum, fix in (
            ("k", 1, 1),
            ("max_new_tokens", 1, 512),
            ("max_steps", 1, 50),
            ("history_length", 0, 2),
            ("batch_size", 1, 16),
            ("seed", 0, 0),
            ("skills_k", 1, 1),
            ("max_prompt_tokens", 1, 4096),
        ):
            if getattr(self, name) < minimum:
                raise ConfigError(
                    f"{name} must be >= {minimum}, got {getattr(self, name)}: set {name} to {fix}"
                )
        check_workers(self.workers)
        if self.n_tasks is not None and self.n_tasks < 1:
            raise ConfigError(f"n_tasks must be >= 1, got {self.n_tasks}: or None for all")
        if self.policy == "model" and self.decoding == "greedy" and self.k != 1:
            raise ConfigError(
                f"greedy decoding gives the same run for every seed, got k={self.k}: set k=1, "
                "or decoding='sample' for avg@k"
            )
        if self.policy == "expert" and self.k != 1:
            raise ConfigError(f"the expert is deterministic, got k={self.k}: set k=1")
        if not self.temperature > 0 or not 0 < self.top_p <= 1:
            raise ConfigError("temperature must be > 0 and top_p in (0, 1]: use 1.0 and 1.0")
        return self
