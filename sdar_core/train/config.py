"""Frozen, validated settings of the training stages: `UpdateConfig` (RL update), `SFTConfig`
(supervised warm-start), and the fields they share (`TrainConfig`: optimizer, schedule, batching,
backend, LoRA). Every field maps one-to-one to a CLI flag / pipeline parameter; None means "not
set" (never -1 or "").

Defaults: AdamW with weight decay 0.01 and gradient clipping at 1.0 (verl's actor defaults), a
constant learning rate, micro-batches of at most 8192 padded tokens. The warm start takes the whole
batch as one optimizer step per epoch unless `mini_batch_size` is set; the RL update takes the
authors' `ppo_mini_batch_size` of 256 samples per optimizer step (several steps per round) and
resumes the optimizer and counters carried in its input checkpoint (`trainer_state="resume"`).

Schedule positions: the warm start advances its schedule per optimizer step; the RL update per
training iteration (one round's update), as the authors' verl trainer does, over
`total_iterations` iterations (the pipeline sets it to the number of rounds). `warmup_ratio`
gives the warm-up as a share of the schedule's length (Search-QA: 0.1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sdar_core.devices import Device
from sdar_core.errors import ConfigError
from sdar_core.limits import WHOLE_NUMBER, Count, OptionalCount

__all__ = ["LORA_TARGETS", "SFTConfig", "TrainConfig", "UpdateConfig"]

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class TrainConfig(BaseModel):
    """Settings shared by every training stage (the common optimizer / batching code path)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    backend: Literal["torch", "deepspeed"] = Field(
        default="torch", description="torch (plain PyTorch) or deepspeed (ZeRO)"
    )
    zero_stage: Annotated[Literal[1, 2, 3], WHOLE_NUMBER] = Field(
        default=2, description="DeepSpeed ZeRO stage"
    )
    epochs: Count = Field(default=1, description="passes over the batch")
    mini_batch_size: OptionalCount = Field(
        default=None, description="samples per optimizer step; None: the whole batch"
    )
    micro_batch_tokens: Count = Field(
        default=8192, description="padded tokens (rows x longest row) per forward/backward"
    )
    shuffle: bool = Field(default=True, description="shuffle samples before mini-batching")
    seed: Count = 0
    lr: float | None = Field(default=None, description="None: the algorithm's (update) / 1e-4")
    optimizer: Literal["adamw", "sgd"] = "adamw"
    weight_decay: float = 0.01
    lr_schedule: Literal["constant", "linear", "cosine"] = "constant"
    warmup_steps: Count = Field(default=0, description="linear warm-up positions of the schedule")
    warmup_ratio: float | None = Field(
        default=None, description="warm-up as a share of the schedule's length (overrides steps)"
    )
    min_lr_ratio: float = Field(default=0.0, description="final lr / peak lr (linear, cosine)")
    max_grad_norm: float | None = Field(default=1.0, description="None: no clipping")
    max_nonfinite_steps: Count = Field(
        default=3, description="fail after this many skipped (non-finite) steps in a row"
    )
    lora: bool = Field(default=False, description="train a LoRA adapter instead of all weights")
    lora_rank: Count = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    lora_targets: tuple[str, ...] = LORA_TARGETS
    chunk_size: OptionalCount = Field(
        default=None, description="LM-head rows per chunk (None: auto)"
    )
    gradient_checkpointing: bool = False
    device: Device = "cpu"
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    trust_remote_code: bool = False

    def device_for_rank(self) -> str:
        """`device`, with a bare "cuda" pinned to this process's GPU under a launcher
        (LOCAL_RANK set), so that every rank of `deepspeed --num_gpus N` uses its own GPU."""
        import os

        if self.device == "cuda" and "LOCAL_RANK" in os.environ:
            return f"cuda:{os.environ['LOCAL_RANK']}"
        return self.device

    @model_validator(mode="after")
    def _check_train(self) -> TrainConfig:
        for name, minimum, fix in (
            ("epochs", 1, 1),
            ("micro_batch_tokens", 1, 8192),
            ("warmup_steps", 0, 0),
            ("max_nonfinite_steps", 1, 3),
            ("lora_rank", 1, 8),
            ("seed", 0, 0),
        ):
            if getattr(self, name) < minimum:
                raise ConfigError(
                    f"{name} must be >= {minimum}, got {getattr(self, name)}: set {name} to {fix}"
                )
        if self.mini_batch_size is not None and self.mini_batch_size < 1:
            raise ConfigError(
                f"mini_batch_size must be >= 1, got {self.mini_batch_size}: set it to None to "
                "make the whole batch one optimizer step"
            )
        if self.lr is not None and not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}: set lr to None for the default")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ConfigError(
                f"max_grad_norm must be > 0, got {self.max_grad_norm}: use 1.0, or None"
            )
        if self.warmup_ratio is not None and not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(
                f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}: e.g. 0.1, or None"
            )
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ConfigError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.weight_decay < 0 or not 0.0 <= self.lora_dropout < 1.0:
            raise ConfigError("weight_decay must be >= 0 and lora_dropout in [0, 1)")
        if self.lora and not self.lora_targets:
            raise ConfigError(f"lora_targets is empty: use {list(LORA_TARGETS)}")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ConfigError(f"chunk_size must be >= 1, got {self.chunk_size}: or None (auto)")
        return self


class UpdateConfig(TrainConfig):
    """Settings of `sdar_update` (one RL update on scored trajectories)."""

    algorithm: str = Field(default="sdar", description="preset name (sdar_core.algos)")
    distill_coef: float | None = Field(
        default=None,
        description="coefficient of the distillation term; None: the preset's (sdar, grpo_opsd, "
        "opsd: the authors' 0.01)",
    )
    invalid_action_penalty: float | None = Field(
        default=None,
        description="subtracted from a sample's reward per invalid action; None: the preset's "
        "(the authors' 0.1, Search 0.01). 0 leaves a group whose episodes all failed flat (no "
        "policy gradient), where the penalty would otherwise rank its episodes by invalid actions",
    )
    recompute_old_logprobs: bool = Field(
        default=False,
        description="recompute old_logprobs with the starting policy instead of the rollout's",
    )
    temperature: float | None = Field(
        default=None, description="log-prob temperature; None: the rollout's"
    )
    clip_ratio_low: float | None = Field(default=None, description="None: the loss's default")
    clip_ratio_high: float | None = Field(default=None, description="None: the loss's default")
    clip_ratio_c: float | None = Field(default=None, description="None: the loss's default")
    mini_batch_size: OptionalCount = Field(
        default=256, description="samples per optimizer step (the authors' ppo_mini_batch_size)"
    )
    trainer_state: Literal["resume", "fresh"] = Field(
        default="resume",
        description="resume: continue the optimizer, schedule and counters carried in the "
        "input checkpoint (verified; a later round's checkpoint without them is refused); "
        "fresh: start them anew (also the way to train on from such a checkpoint)",
    )
    state_dir: Path | None = Field(
        default=None,
        description="keep the optimizer state in this folder (e.g. on a PVC) instead of inside "
        "the checkpoint, which then only names it; None: inside the checkpoint",
    )
    weights_dtype: Literal["bfloat16", "float32"] | None = Field(
        default=None,
        description="dtype of the checkpoint's weights (what rollouts and teacher download); "
        "None: the training dtype. Narrower than the training dtype, the trainer state keeps "
        "the float32 weights the next update trains on (state.py)",
    )
    total_iterations: OptionalCount = Field(
        default=None,
        description="RL updates in the whole run (the schedule's length); None: a constant "
        "schedule without warm-up needs none",
    )

    @model_validator(mode="after")
    def _check_update(self) -> UpdateConfig:
        from sdar_core.algos import get_algorithm

        algo = get_algorithm(self.algorithm)  # raises UnknownNameError with the valid names
        if not algo.trains:
            raise ConfigError(
                f"algorithm {self.algorithm!r} does not train (it is an evaluation row): "
                "evaluate the base model instead, or choose grpo / sdar / ..."
            )
        if self.temperature is not None and not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}: or None")
        if self.distill_coef is not None:
            if algo.distill_loss == "none":
                raise ConfigError(
                    f"distill_coef is set but algorithm {self.algorithm!r} has no distillation "
                    "term: drop distill_coef, or choose sdar / grpo_opsd / opsd / skill_sd"
                )
            if not self.distill_coef > 0:
                raise ConfigError(
                    f"distill_coef must be > 0, got {self.distill_coef}: e.g. 0.01, or None for "
                    "the preset's"
                )
        penalty = self.invalid_action_penalty
        if penalty is not None and not penalty >= 0:
            raise ConfigError(
                f"invalid_action_penalty must be >= 0, got {penalty}: e.g. 0.1, 0, or None for "
                "the preset's"
            )
        if self.total_iterations is not None and self.total_iterations < 1:
            raise ConfigError(
                f"total_iterations must be >= 1, got {self.total_iterations}: the number of rounds"
            )
        scheduled = self.lr_schedule != "constant" or self.warmup_ratio is not None
        if scheduled and self.total_iterations is None:
            raise ConfigError(
                f"lr_schedule={self.lr_schedule!r} with warm-up/decay needs the run's length: set "
                "total_iterations to the number of rounds (the pipeline sets it)"
            )
        return self


class SFTConfig(TrainConfig):
    """Settings of `warmstart_sft` (supervised fine-tuning on expert episodes)."""

    env: str = "alfworld"
    split: str | None = Field(default="train", description="game split the expert plays")
    n_tasks: OptionalCount = Field(
        default=None,
        description="n tasks spread over the task types (round-robin); None: all",
    )
    max_steps: Count = Field(default=50, description="expert steps per episode")
    history_length: Count = Field(default=2, description="past steps in the prompt")
    think_words: OptionalCount = Field(
        default=None, description="keep only the first n words of the expert's thought"
    )
    episodes_per_task: Count = Field(
        default=1, description="expert episodes per game (differing when explore is 'random')"
    )
    explore: Literal["ordered", "random"] = Field(
        default="ordered",
        description="how the expert orders equally likely unexplored receptacles: by name, or "
        "at random per episode (demonstrations a searching student can imitate)",
    )
    skills_fraction: float = Field(
        default=0.0,
        description="share of expert episodes played with the retrieved skills in the prompt "
        "(the expert then uses what they state), so the model learns to read its context; "
        "needs the skill index",
    )
    skills_k: Count = Field(default=1, description="task-specific skills retrieved per episode")
    include_general: bool = Field(default=True, description="add the general skills first")
    skill_detours: Count = Field(
        default=0,
        description="in an episode with skills, the expert's first 0..n moves (a seeded draw "
        "per episode) go to random receptacles other than the one the skills name and are not "
        "trained on: the model learns to follow the skills from off-path states too, as the "
        "teacher must when it scores a student's steps (ALFWorld)",
    )

    @model_validator(mode="after")
    def _check_sft(self) -> SFTConfig:
        if not 0.0 <= self.skills_fraction <= 1.0:
            raise ConfigError(
                f"skills_fraction must be in [0, 1], got {self.skills_fraction}: e.g. 0.5"
            )
        for name, minimum in (
            ("max_steps", 1), ("history_length", 0), ("episodes_per_task", 1), ("skills_k", 1),
            ("skill_detours", 0),
        ):  # fmt: skip
            if getattr(self, name) < minimum:
                raise ConfigError(f"{name} must be >= {minimum}, got {getattr(self, name)}")
        if self.n_tasks is not None and self.n_tasks < 1:
            raise ConfigError(f"n_tasks must be >= 1, got {self.n_tasks}: or None for all")
        if self.think_words is not None and self.think_words < 0:
            raise ConfigError(f"think_words must be >= 0, got {self.think_words}: or None")
        return self
