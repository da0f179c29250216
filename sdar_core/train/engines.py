"""Training backends behind one small interface: plain PyTorch ("torch") and DeepSpeed ZeRO
("deepspeed"), chosen by name; plus the optimizer and learning-rate-schedule registries.

An engine owns the module, optimizer and schedule: `forward(batch)`, `backward(loss)` (gradients
accumulate), `set_position(p)` (the learning rate of schedule position p: optimizer steps for the
warm start, training iterations for the RL update, as the authors schedule it), `step()` (clip,
update, clear gradients; returns the pre-clip gradient norm and whether the update was applied),
`discard()` (clear gradients, no update), `state_dict()` (full float weights, gathered under
ZeRO-3), `check_weights(step)` (every trained weight finite, else FloatingPointError naming the
tensor) and `save_state(dir)` / `load_state(dir)` (the optimizer's state, so that training
resumes across rounds; state.py). The schedule is a pure function of the position, so resuming
needs only the carried counters, never a scheduler object.

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
from pathlib import Path
from typing import Any

import torch

from sdar_core.algos import Registry
from sdar_core.errors import ArtifactError
from sdar_core.train.config import TrainConfig

_SHM_OP = "deepspeed_shm_comm"
DS_TAG = "trainer_state"

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
    bad_tensor: str | None = None  # a skipped step: the first tensor with a non-finite gradient


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


def make_schedule(config: TrainConfig, *, total: int) -> Schedule:
    """The lr factor at each schedule position (0-based) of a schedule `total` positions long;
    `warmup_ratio` (if set) gives the warm-up as a share of `total`."""
    warmup = config.warmup_steps
    if config.warmup_ratio is not None:
        warmup = round(config.warmup_ratio * total)
    return SCHEDULES.get(config.lr_schedule)(
        total=total, warmup=warmup, min_ratio=config.min_lr_ratio
    )


# ---- engines ------------------------------------------------------------------------------------
class Engine:
    """Plain PyTorch: the module, a torch optimizer, a schedule over positions."""

    def __init__(self, module: torch.nn.Module, config: TrainConfig, *, lr: float, total: int):
        self.module = module.train()
        self.named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        self.params = [p for _, p in self.named]
        self.optimizer = make_optimizer(self.params, config, lr=lr)
        self._setup_schedule(config, lr=lr, total=total)
        self.max_grad_norm = config.max_grad_norm

    def _setup_schedule(self, config: TrainConfig, *, lr: float, total: int) -> None:
        self.base_lr = lr
        self.schedule = make_schedule(config, total=total)
        self.set_position(0)

    def set_position(self, position: int) -> None:
        """Set the learning rate of schedule position `position` on every parameter group."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.base_lr * self.schedule(position)

    def forward(self, batch) -> torch.Tensor:
        return self.module(batch)

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def step(self) -> StepResult:
        limit = self.max_grad_norm if self.max_grad_norm is not None else float("inf")
        norm = float(torch.nn.utils.clip_grad_norm_(self.params, limit))
        if not math.isfinite(norm):
            bad = self.nonfinite_grad()
            self.discard()
            return StepResult(norm, False, bad)
        self.optimizer.step()
        self.discard()
        return StepResult(norm, True)

    def nonfinite_grad(self) -> str | None:
        """The name of the first trained tensor whose gradient is not finite (None: all are)."""
        for name, p in self.named:
            if p.grad is not None and not bool(torch.isfinite(p.grad).all()):
                return name
        return None

    def check_weights(self, step: int) -> None:
        """Raise FloatingPointError naming the first trained weight that is not finite."""
        for name, p in self.named:
            if p.numel() and not bool(torch.isfinite(p.detach()).all()):
                raise FloatingPointError(
                    f"optimizer step {step} left non-finite values in weight {name!r}: the "
                    "update is refused (no checkpoint written); lower lr, keep max_grad_norm "
                    "set, or check the trajectories for extreme log-probs"
                )

    def discard(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def state_dict(self) -> dict[str, torch.Tensor] | None:
        """None: save the module's own parameters."""
        return None

    def save_state(self, directory: Path) -> None:
        from sdar_core.train.state import save_torch_optimizer

        save_torch_optimizer(self.optimizer, [n for n, _ in self.named], directory)

    def load_state(self, directory: Path) -> None:
        from sdar_core.train.state import load_torch_optimizer

        load_torch_optimizer(self.optimizer, [n for n, _ in self.named], directory)


class DeepSpeedEngine(Engine):
    """DeepSpeed ZeRO-1/2/3 around the same module, optimizer and schedule (module docstring)."""

    def __init__(self, module: torch.nn.Module, config: TrainConfig, *, lr: float, total: int):
        _single_process_env()
        import deepspeed

        if int(os.environ["WORLD_SIZE"]) == 1:  # one process never uses the shm comm op
            deepspeed.ops.__compatible_ops__[_SHM_OP] = False

        self.named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        self.params = [p for _, p in self.named]
        optimizer = make_optimizer(self.params, config, lr=lr)
        ds_config = _ds_config(config)
        if config.zero_stage == 3:
            weight = module.causal_lm().get_output_embeddings().weight
            self._stage3 = True
        else:
            weight, self._stage3 = None, False
        # the schedule is ours (set_position writes each group's lr); DeepSpeed's ZeRO
        # optimizers step the client optimizer's parameter groups, so the lr reaches them
        self.ds, self.optimizer, _, _ = deepspeed.initialize(
            model=module.train(), optimizer=optimizer, config=ds_config
        )
        self.module = self.ds.module
        self._setup_schedule(config, lr=lr, total=total)
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

    def nonfinite_grad(self) -> str | None:
        return None  # DeepSpeed holds the gradients in its own buffers; the loss is checked

    def check_weights(self, step: int) -> None:
        if not self._stage3:  # ZeRO-3 weights are partitioned: checked when gathered to save
            super().check_weights(step)

    def discard(self) -> None:
        self.ds.zero_grad()

    def save_state(self, directory: Path) -> None:
        """DeepSpeed's own checkpoint (module, ZeRO optimizer shards), every rank taking part."""
        self.ds.save_checkpoint(str(directory), tag=DS_TAG, save_latest=False)

    def load_state(self, directory: Path) -> None:
        path, _ = self.ds.load_checkpoint(
            str(directory),
            tag=DS_TAG,
            load_optimizer_states=True,
            load_lr_scheduler_states=False,
            load_module_strict=True,
        )
        if path is None:
            raise ArtifactError(
                f"{directory} holds no DeepSpeed checkpoint tagged {DS_TAG!r}: the trainer state "
                "was written by another backend; set trainer_state='fresh' to start a new "
                "optimizer, or train with the backend that wrote it"
            )

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
