"""Data parallelism for the training loop: which micro-batches each rank runs, and agreeing on
what the ranks measured.

Under a launcher (`deepspeed --num_gpus N`, `torchrun`), every rank reads the same samples and
builds the same mini-batches and micro-batches (all deterministic), then runs only its share:
micro-batch i goes to rank i mod N. DeepSpeed averages gradients over the N ranks, so each rank
scales its micro-batch loss by N; with the weights of `batch.micro_weight` (each micro-batch's
share of the whole mini-batch) the reduced gradient is exactly the single-process one.

DeepSpeed reduces gradients inside every backward, so every rank must run the same number of
backward passes per step: a rank with fewer micro-batches runs a zero-weight pass over one of
them (`shard` returns None there), which adds nothing to the gradient. A non-finite loss on any
rank skips the step on all ranks (`all_finite`), and the logged metrics are sums over ranks
(`sum_over_ranks`), so rank 0 logs what a single process would.

The no-grad passes before training (reference and recomputed old log-probs) are sharded the same
way and their rows shared with every rank (`gather_rows`); they run on the plain module before
DeepSpeed wraps it, so `start_process_group` starts torch.distributed for them first.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TypeVar

import torch

__all__ = [
    "all_finite",
    "gather_rows",
    "rank_and_size",
    "shard",
    "start_process_group",
    "sum_over_ranks",
    "barrier",
]

T = TypeVar("T")


def rank_and_size() -> tuple[int, int]:
    """(rank, world size): torch.distributed's once initialised, else the launcher's variables,
    else (0, 1)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def start_process_group(backend: str, device: str) -> None:
    """Under a launcher with several ranks, start torch.distributed (through DeepSpeed, as its
    engine would later) with this rank's GPU pinned; nothing with one rank or when started.
    The torch backend trains in one process: several ranks are a ConfigError."""
    from sdar_core.errors import ConfigError

    _, size = rank_and_size()
    if size > 1 and backend != "deepspeed":
        raise ConfigError(
            f"backend={backend!r} trains in one process, but WORLD_SIZE={size} (a launcher "
            "started several): set backend='deepspeed' to train data-parallel"
        )
    if size == 1 or (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    if device.startswith("cuda"):
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    import deepspeed

    deepspeed.init_distributed()


def barrier() -> None:
    """Wait for every rank (nothing in one process)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


def shard(items: Sequence[T], *, rank: int, size: int) -> list[T | None]:
    """Items rank, rank + size, ... of `items`, padded with None to ceil(len / size) entries."""
    mine: list[T | None] = list(items[rank::size])
    rounds = -(-len(items) // size)
    return mine + [None] * (rounds - len(mine))


def all_finite(value: torch.Tensor, *, size: int) -> bool:
    """True when `value` is finite on every rank (one all-reduce when size > 1)."""
    finite = bool(torch.isfinite(value.detach()).all())
    if size == 1:
        return finite
    flag = torch.tensor([1.0 if finite else 0.0], device=_device())
    torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
    return bool(flag.item() == 1.0)


def sum_over_ranks(values: dict[str, float], *, size: int) -> dict[str, float]:
    """Each value summed over the ranks (every rank passes the same keys)."""
    if size == 1 or not values:
        return dict(values)
    names = sorted(values)
    tensor = torch.tensor([values[n] for n in names], dtype=torch.float64, device=_device())
    torch.distributed.all_reduce(tensor)
    return dict(zip(names, tensor.tolist(), strict=True))


def gather_rows(
    mine: dict[int, list[float]], lengths: Sequence[int], *, size: int
) -> list[list[float]]:
    """Rows computed on different ranks (row i, of length lengths[i], on exactly one rank), in
    order, on every rank: summed into one zero-filled float32 tensor (adding zeros is exact)."""
    if size == 1:
        return [mine[i] for i in range(len(lengths))]
    table = torch.zeros((len(lengths), max(lengths, default=0)), dtype=torch.float32)
    for i, row in mine.items():
        table[i, : len(row)] = torch.tensor(row, dtype=torch.float32)
    table = table.to(_device())
    torch.distributed.all_reduce(table)
    table = table.cpu()
    return [table[i, :n].tolist() for i, n in enumerate(lengths)]


def _device() -> torch.device:
    """Where collectives take their tensors: this rank's GPU with NCCL, else the CPU."""
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
