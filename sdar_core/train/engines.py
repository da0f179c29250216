"""Training backends behind one small interface: plain PyTorch ("torch") and DeepSpeed ZeRO
("deepspeed"), chosen by name; plus the optimizer and learning-rate-schedule registries.

An engine owns the module, optimizer and schedule: `forward(batch)`, `backward(loss)` (gradients
accumulate), `step()` (clip, update, advance the schedule, clear gradients; returns the pre-clip
gradient norm and whether the update was applied), `discard()` (clear gradients, no update) and
`state_dict()` (full float weights, gathered under ZeRO-3).

torch: a non-finite gradient norm skips the update (the caller counts skips). DeepSpeed: the
optimizer is a client torch optimizer (DeepSpeed's own CPU Adam is compiled ahead of time, about
75 s, DESIGN.md §4), gradient accumulation is unmanaged (`managed_gradient_accumulation: false`:
every backward accumulates, `step()` is the boundary), so micro-batch counts may vary per step,
and clipping is DeepSpeed's. Its gradient norm is only known after the update, so the non-finite
guard there acts on the loss (checked by the caller before backward) and a non-finite norm after
an update raises at once. On CPU it runs in one process with the gloo backend; the environment
variables torch.distributed needs (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) are set
when absent. On several GPUs the same code is meant to run under `deepspeed --num_gpus N
<script>` (which sets them) with `device="cuda"` (each rank takes cuda:LOCAL_RANK); this is not
exercised here.
Limitation: samples are not yet sharded across ranks, so every rank would compute the whole
mini-batch; the update stays exact (identical gradients, averaged) and ZeRO still shards optimizer
state, gradients and (stage 3) parameters, but there is no data-parallel speed-up.
DeepSpeed computes the clipping norm its own way (2e-5 relative from torch's on the tiny model), so
with clipping on the two backends agree to that order; without clipping they agree to rounding.
The shared-memory communication op DeepSpeed JIT-builds on CPU (~45 s) is not needed by a single
process; with WORLD_SIZE 1 it is marked incompatible before `deepspeed.initialize`, so DeepSpeed
skips building it (initialize then takes about a second).
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from sdar_core.algos import Registry
from sdar_core.train.config import TrainConfig

_SHM_OP = "deepspeed_shm_comm"

__all__ = [
    "ENGINES",
    "Engine",
    "StepResult",
    "is_main_process",
    "make_engine",
    "make_optimizer",
    "make_schedule",
]


@dataclass(frozen=True)
class StepResult:
    grad_norm: float
    applied: bool


# ---- optimizers and schedules -------------------------------------------------------------------
OPTIMIZERS: Registry[Callable[..., torch.optim.Optimizer]] = Registry("optimizer")
OPTIMIZERS.add(
    "adamw",
    lambda params, *, lr, weight_decay: torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay),
)
OPTIMIZERS.add(
    "sgd",
    lambda params, *, lr, weight_decay: torch.optim.SGD(params, lr=lr, weight_decay=weight_decay),
)

Schedule = Callable[[int], float]
SCHEDULES: Registry[Callable[..., Schedule]] = Registry("lr schedule")


def _warm(step: int, warmup: int) -> float | None:
    return (step + 1) / (warmup + 1) if step < warmup else None


@SCHEDULES.register("constant")
def _constant(*, total: int, warmup: int, min_ratio: float) -> Schedule:
    return lambda step: _warm(step, warmup) or 1.0


@SCHEDULES.register("linear")
def _linear(*, total: int, warmup: int, min_ratio: float) -> Schedule:
    def factor(step: int) -> float:
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return _warm(step, warmup) or 1.0 - (1.0 - min_ratio) * progress

    return factor


@SCHEDULES.register("cosine")
def _cosine(*, total: int, warmup: int, min_ratio: float) -> Schedule:
    def factor(step: int) -> float:
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return _warm(step, warmup) or min_ratio + (1 - min_ratio) * 0.5 * (
            1 + math.cos(math.pi * progress)
        )

    return factor


def make_optimizer(params, config: TrainConfig, *, lr: float) -> torch.optim.Optimizer:
    return OPTIMIZERS.get(config.optimizer)(params, lr=lr, weight_decay=config.weight_decay)


def make_schedule(optimizer, config: TrainConfig, *, total_steps: int):
    factor = SCHEDULES.get(config.lr_schedule)(
        total=total_steps, warmup=config.warmup_steps, min_ratio=config.min_lr_ratio
    )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# ---- engines ------------------------------------------------------------------------------------
class Engine:
    """Plain PyTorch: the module, a torch optimizer, a LambdaLR schedule."""

    def __init__(self, module: torch.nn.Module, config: TrainConfig, *, lr: float, total: int):
        self.module = module.train()
        self.params = [p for p in module.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(self.params, config, lr=lr)
        self.schedule = make_schedule(self.optimizer, config, total_steps=total)
        self.max_grad_norm = config.max_grad_norm

    def forward(self, batch) -> torch.Tensor:
        return self.module(batch)

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def step(self) -> StepResult:
        limit = self.max_grad_norm if self.max_grad_norm is not None else float("inf")
        norm = float(torch.nn.utils.clip_grad_norm_(self.params, limit))
        if not math.isfinite(norm):
            self.discard()
            return StepResult(norm, False)
        self.optimizer.step()
        self.schedule.step()
        self.discard()
        return StepResult(norm, True)

    def discard(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def state_dict(self) -> dict[str, torch.Tensor] | None:
        """None: save the module's own parameters."""
        return None


class DeepSpeedEngine(Engine):
    """DeepSpeed ZeRO-1/2/3 around the same module, optimizer and schedule (module docstring)."""

    def __init__(self, module: torch.nn.Module, config: TrainConfig, *, lr: float, total: int):
        _single_process_env()
        import deepspeed

        if int(os.environ["WORLD_SIZE"]) == 1:  # one process never uses the shm comm op
            deepspeed.ops.__compatible_ops__[_SHM_OP] = False

        self.params = [p for p in module.parameters() if p.requires_grad]
        optimizer = make_optimizer(self.params, config, lr=lr)
        schedule = make_schedule(optimizer, config, total_steps=total)
        ds_config = _ds_config(config)
        if config.zero_stage == 3:
            weight = module.causal_lm().get_output_embeddings().weight
            self._stage3 = True
        else:
            weight, self._stage3 = None, False
        self.ds, self.optimizer, _, self.schedule = deepspeed.initialize(
            model=module.train(), optimizer=optimizer, lr_scheduler=schedule, config=ds_config
        )
        self.module = self.ds.module
        if weight is not None:
            deepspeed.zero.register_external_parameter(self.module, weight)
        self.max_grad_norm = config.max_grad_norm

    def forward(self, batch) -> torch.Tensor:
        return self.ds(batch)

    def backward(self, loss: torch.Tensor) -> None:
        self.ds.backward(loss, scale_wrt_gas=False)

    def step(self) -> StepResult:
        self.ds.step()
        norm = self.ds.get_global_grad_norm()
        norm = float("nan") if norm is None else float(norm)
        if not math.isfinite(norm):
            raise FloatingPointError(
                "DeepSpeed applied an update with a non-finite gradient norm: the weights are no "
                "longer usable; lower lr, set max_grad_norm, or train with backend='torch', "
                "whose guard skips such steps"
            )
        return StepResult(norm, True)

    def discard(self) -> None:
        self.ds.zero_grad()

    def lr(self) -> float:
        return float(self.ds.get_lr()[0])

    def state_dict(self) -> dict[str, torch.Tensor] | None:
        if not self._stage3:
            return None
        import deepspeed

        params = list(self.module.parameters())
        with deepspeed.zero.GatheredParameters(params, modifier_rank=None):
            named = self.module.model.named_parameters()  # tied weights appear once
            return {name: p.detach().clone() for name, p in named}


ENGINES: Registry[type[Engine]] = Registry("training backend")
ENGINES.add("torch", Engine)
ENGINES.add("deepspeed", DeepSpeedEngine)


def make_engine(module, config: TrainConfig, *, lr: float, total_steps: int) -> Engine:
    from sdar_core.train.parallel import start_process_group

    start_process_group(config.backend, config.device)  # refuses torch with several ranks
    return ENGINES.get(config.backend)(module, config, lr=lr, total=total_steps)


def _ds_config(config: TrainConfig) -> dict[str, Any]:
    zero: dict[str, Any] = {"stage": config.zero_stage}
    if config.zero_stage == 3:
        # Small models: keep every parameter resident after the first gather (no re-partitioning
        # churn); large models fall back to DeepSpeed's defaults above these thresholds.
        zero |= {"stage3_param_persistence_threshold": 0, "stage3_prefetch_bucket_size": 0}
    ds = {
        "train_micro_batch_size_per_gpu": 1,
        "gradient_accumulation_steps": 1,
        "managed_gradient_accumulation": False,
        "zero_optimization": zero,
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 2**31 - 1,
        "wall_clock_breakdown": False,
    }
    # DeepSpeed clips at 1.0 unless told otherwise; 0.0 turns clipping off.
    ds["gradient_clipping"] = config.max_grad_norm or 0.0
    if config.dtype == "bfloat16":
        ds["bf16"] = {"enabled": True}
    elif config.dtype == "float16":
        ds["fp16"] = {"enabled": True}
    return ds


def is_main_process() -> bool:
    """True on rank 0 (or without a launcher): the one process that writes checkpoints."""
    return int(os.environ.get("RANK", "0")) == 0


def _single_process_env() -> None:
    """torch.distributed settings for one process, where no launcher set them."""
    if "MASTER_PORT" not in os.environ:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            os.environ["MASTER_PORT"] = str(s.getsockname()[1])
    for name, value in (
        ("RANK", "0"),
        ("LOCAL_RANK", "0"),
        ("WORLD_SIZE", "1"),
        ("MASTER_ADDR", "127.0.0.1"),
    ):
        os.environ.setdefault(name, value)
