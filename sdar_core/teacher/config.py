"""`TeacherConfig`: settings of the teacher-scoring stage, frozen and validated with fixes."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sdar_core.devices import Device, DtypeName
from sdar_core.errors import ConfigError
from sdar_core.limits import Count, OptionalCount
from sdar_core.workers import check_workers

__all__ = ["TeacherConfig"]


class TeacherConfig(BaseModel):
    """Settings of `score_teacher`."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    skills_k: Count = Field(
        default=1,
        description="task-specific skills retrieved per group (the bundled libraries hold one "
        "per task type, so 1 is that type's skill; raise it for a library with several)",
    )
    include_general: bool = Field(default=True, description="add the general skills first")
    skills_max_tokens: OptionalCount = Field(
        default=None, description="token budget of the retrieved skills (None: no budget)"
    )
    max_prompt_tokens: Count = Field(
        default=4096,
        description="teacher prompt budget (chat messages + skills); skills are dropped to fit",
    )
    batch_tokens: Count = Field(
        default=16384, description="padded tokens per forward batch (batch size x longest)"
    )
    chunk_size: Count = Field(default=1024, description="rows per LM-head chunk in token_logprobs")
    prefix_cache: bool = Field(
        default=True,
        description="hf: run each group's shared prefix (system + skills, ...) once and reuse "
        "its KV cache for every member; False scores every sample from its first token",
    )
    min_prefix_tokens: Count = Field(
        default=16, description="groups sharing fewer leading tokens use the plain forward"
    )
    backend: Literal["hf", "vllm"] = "hf"
    device: Device = "cpu"
    dtype: DtypeName = Field(default="float32", description="None keeps the checkpoint's")
    trust_remote_code: bool = False
    skills_dir: Path | None = Field(
        default=None, description="if set, the index must have been built from this folder"
    )
    workers: Count | Literal["auto"] = Field(
        default="auto",
        description="worker processes, one per GPU (auto: every visible GPU on device cuda, "
        "1 on CPU); see sdar_core.workers",
    )
    shard_groups: OptionalCount = Field(
        default=None,
        description="groups per shard: each shard is scored in batches of its own, so the "
        "scores do not depend on the number of workers; None: the groups split evenly over "
        "the workers",
    )
    show_progress: bool = True
    skill_noise: float = Field(
        default=0.0,
        description="share of teacher contexts (groups) whose task-specific skills are replaced "
        "by wrong ones, skills of other tasks (tests the gate against imperfect retrieval); 0: "
        "none",
    )
    seed: Count = Field(default=0, description="seed of the groups skill_noise picks")

    @model_validator(mode="after")
    def _check(self) -> TeacherConfig:
        for name, minimum, fix in (
            ("skills_k", 0, 1),
            ("max_prompt_tokens", 1, 4096),
            ("batch_tokens", 1, 16384),
            ("chunk_size", 1, 1024),
            ("min_prefix_tokens", 1, 16),
        ):
            if getattr(self, name) < minimum:
                raise ConfigError(
                    f"{name} must be >= {minimum}, got {getattr(self, name)}: set {name} to {fix}"
                )
        if not 0.0 <= self.skill_noise <= 1.0:
            raise ConfigError(f"skill_noise must be in [0, 1], got {self.skill_noise}: e.g. 0.5")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}: set seed to 0")
        check_workers(self.workers)
        if self.shard_groups is not None and self.shard_groups < 1:
            raise ConfigError(
                f"shard_groups must be >= 1, got {self.shard_groups}: set it to None (an even "
                "split over the workers) or a group count"
            )
        if self.skills_max_tokens is not None and self.skills_max_tokens < 0:
            raise ConfigError(
                f"skills_max_tokens must be >= 0, got {self.skills_max_tokens}: set it to None "
                "for no budget"
            )
        return self
