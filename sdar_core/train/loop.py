"""The one optimisation loop every training stage uses (RL update and SFT warm-start).

For each epoch, the samples are shuffled and split into mini-batches (one optimizer step each);
each mini-batch is packed into micro-batches by a token budget; each micro-batch's loss is scaled
by its share of the mini-batch (`batch.micro_weight`) before backward, so the accumulated gradient
is the gradient of the mini-batch loss whatever the packing.

Schedule: before each optimizer step the engine's learning rate is set for `position(step)`
(default: the step itself; the RL update passes its training iteration, so the whole round uses
one learning rate, as the authors' trainer does). `shuffle_offset` shifts the shuffling seed so
that the rounds of one run shuffle differently.

Non-finite guard: a micro-batch whose loss is not finite, or a step whose gradient norm is not
finite, skips the optimizer step (gradients discarded) and is logged with the first tensor whose
gradient is not finite; `max_nonfinite_steps` skips in a row raise `FloatingPointError`. After
every applied step every trained weight is checked (`engine.check_weights`): a non-finite weight
fails at once, naming the step and the tensor. A loop in which no step was applied fails too, so
an update can never write its input weights back as if it had trained.

Under a launcher each rank runs its share of the micro-batches (parallel.py): the gradient is the
single-process one, metrics are summed over ranks.

Metrics per step are the micro-batch metrics weighted like the loss, plus `grad_norm` (before
clipping), `lr`, `tokens_per_s` (prompt + response tokens through forward and backward per
second of the step); the summary averages them over the applied steps.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Sequence

import torch

from sdar_core.train.batch import MicroBatch, Sample, collate, micro_batches, micro_weight
from sdar_core.train.batch import minibatches as split_minibatches
from sdar_core.train.config import TrainConfig
from sdar_core.train.engines import Engine
from sdar_core.train.parallel import all_finite, rank_and_size, shard, sum_over_ranks

__all__ = ["LossFn", "count_steps", "train_loop"]

log = logging.getLogger(__name__)
LossFn = Callable[[torch.Tensor, MicroBatch, int], tuple[torch.Tensor, dict[str, float]]]


def count_steps(n_samples: int, config: TrainConfig) -> int:
    size = config.mini_batch_size or n_samples
    return config.epochs * math.ceil(n_samples / size)


def train_loop(
    engine: Engine,
    samples: Sequence[Sample],
    config: TrainConfig,
    *,
    loss_fn: LossFn,
    agg_mode: str,
    pad_id: int,
    position: Callable[[int], int] | None = None,
    shuffle_offset: int = 0,
) -> dict[str, float | list]:
    """Train on `samples`; returns summary metrics and the per-step history."""
    history: list[dict[str, float]] = []
    bad_in_row = skipped = 0
    started = time.perf_counter()
    for epoch in range(config.epochs):
        minis = split_minibatches(
            samples,
            size=config.mini_batch_size,
            shuffle=config.shuffle,
            seed=config.seed,
            epoch=shuffle_offset * config.epochs + epoch,
        )
        for mini in minis:
            step = len(history)
            engine.set_position(step if position is None else position(step))
            metrics = _step(engine, mini, config, loss_fn, agg_mode, pad_id, step)
            history.append(metrics)
            if metrics["skipped"]:
                skipped, bad_in_row = skipped + 1, bad_in_row + 1
                log.warning("skipped step %d: non-finite %s", step, metrics["reason"])
                if bad_in_row >= config.max_nonfinite_steps:
                    raise FloatingPointError(
                        f"{bad_in_row} optimizer steps in a row had a non-finite "
                        f"{metrics['reason']} (last: step {step}): lower lr, set max_grad_norm, "
                        "or check the trajectories for inf/NaN log-probs"
                    )
            else:
                bad_in_row = 0
                engine.check_weights(step)
    if skipped == len(history):
        raise FloatingPointError(
            f"no optimizer step of this update succeeded ({skipped} skipped, last for a "
            f"non-finite {history[-1]['reason']}): no checkpoint is written; check the "
            "trajectories for inf/NaN log-probs, lower lr, or set max_grad_norm"
        )
    return _summary(history, skipped, time.perf_counter() - started)


def _step(engine, mini, config, loss_fn, agg_mode, pad_id, step) -> dict:
    totals: dict[str, float] = defaultdict(float)
    tokens, started = 0, time.perf_counter()
    device = config.device_for_rank()
    rank, size = rank_and_size()
    micros = micro_batches(mini, max_tokens=config.micro_batch_tokens)
    for micro in shard(micros, rank=rank, size=size):
        # a rank short of micro-batches runs a zero-weight pass (parallel.py)
        weight = 0.0 if micro is None else micro_weight(agg_mode, micro, mini)
        batch = collate(micro or micros[0], pad_id=pad_id, device=device)
        outputs = engine.forward(batch)  # (B, T) log-probs, or (log-probs, entropy)
        loss, metrics = loss_fn(outputs, batch, step)
        if not all_finite(loss, size=size):
            engine.discard()
            return {"skipped": 1.0, "reason": "loss"}
        engine.backward(loss * (weight * size))  # DeepSpeed averages over the ranks
        for name, value in metrics.items():
            totals[name] += weight * value
        tokens += 0 if micro is None else sum(len(s) for s in micro)
    lr = engine.lr()
    result = engine.step()
    if not result.applied:
        where = f" (first in {result.bad_tensor!r})" if result.bad_tensor else ""
        return {"skipped": 1.0, "reason": f"gradient{where}"}
    seconds = time.perf_counter() - started
    totals = sum_over_ranks(dict(totals) | {"tokens": float(tokens)}, size=size)
    return totals | {
        "skipped": 0.0,
        "grad_norm": result.grad_norm,
        "lr": lr,
        "tokens_per_s": totals["tokens"] / max(seconds, 1e-9),
        "seconds": seconds,
    }


def _summary(history: list[dict], skipped: int, seconds: float) -> dict[str, float | list]:
    applied = [h for h in history if not h["skipped"]]
    names = sorted({k for h in applied for k in h} - {"skipped", "reason", "tokens", "seconds"})
    summary: dict[str, float | list] = {
        name: sum(h[name] for h in applied if name in h) / max(1, len(applied)) for name in names
    }
    tokens = sum(h.get("tokens", 0.0) for h in applied)
    step_seconds = sum(h.get("seconds", 0.0) for h in applied)
    summary |= {
        "steps": float(len(history)),
        "skipped_steps": float(skipped),
        "tokens_per_s": tokens / max(step_seconds, 1e-9),
        "train_seconds": seconds,
        "history": history,
    }
    return summary
