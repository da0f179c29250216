"""Host memory of an update pod when it resumes under DeepSpeed ZeRO-1/2 (issue 20, item 4).

`load_checkpoint` runs on every rank at once and reads into host memory (map_location CPU)
first the module file (the whole model in the training dtype: M = weight_bytes × P) and then
the rank's optimizer shard (float32 master weights and Adam's two moments of 1/N of the
parameters: S = 12 × P / N), before copying them to the GPU. Measured on CPU with 2 gloo ranks
(benchmarks/resume_memory.py, DeepSpeed 0.19.8): each rank's peak above its baseline is the
larger of the two, max(M, S) — the module's copy is released before the shard is read — and
grows with N ranks as N × max(M, S). This module sizes the pod for the sum, N × (M + S) plus
each rank's own footprint, so that a DeepSpeed version that holds the module's copy while it
reads the shard still fits; for Qwen2.5-3B on 8 GPUs that is 8 × (4 GiB + 6.2 GB + 4.6 GB) ≈
113 GiB, where the old 64 Gi limit would kill the pod at its first resume.

What is assumed, not measured here: `RANK_BASE` (a GPU rank's own host memory: CUDA context,
torch, transformers, NCCL buffers), and that the GPU path reads the same bytes as the CPU one
(the same `load_checkpoint` code, map_location CPU).
"""

from __future__ import annotations

import math

__all__ = ["RANK_BASE", "memory_string", "resume_host_bytes"]

GiB = 2**30
RANK_BASE = 4 * GiB  # assumed per-rank footprint of a GPU training process (module docstring)
OPTIMIZER_BYTES = 12  # per parameter, ZeRO-1/2 with AdamW: fp32 master + exp_avg + exp_avg_sq


def resume_host_bytes(
    n_params: int, n_ranks: int, *, weight_bytes: int = 2, rank_base: int = RANK_BASE
) -> int:
    """Host bytes an update pod of `n_ranks` ranks needs while every rank resumes at once:
    n_ranks × (rank_base + module + shard), module = weight_bytes × n_params (DeepSpeed's
    module file), shard = 12 × n_params / n_ranks (module docstring)."""
    if n_params < 1 or n_ranks < 1:
        raise ValueError(f"n_params and n_ranks must be >= 1, got {n_params}, {n_ranks}")
    module = weight_bytes * n_params
    shard = math.ceil(OPTIMIZER_BYTES * n_params / n_ranks)
    return n_ranks * (rank_base + module + shard)


def memory_string(n_bytes: int) -> str:
    """`n_bytes` rounded up to whole GiB, as Kubernetes writes it ("113Gi"; no decimals: KFP
    refuses them)."""
    return f"{math.ceil(n_bytes / GiB)}Gi"
