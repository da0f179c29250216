"""The losses the trainer minimises, assembled from `sdar_core.algos` by an Algorithm preset.

RL (`rl_loss`), all (B, T) with the response mask, as the authors' actor loss (dp_actor.py):
    L = pg_coef · L_pg − entropy_coeff · L_ent + kl_coef · L_kl + distill_coef · L_distill
- L_pg: the preset's policy loss on token advantages (sample advantages broadcast to tokens, or
  reshaped by RLSD's transform, in which case no distill loss is added). RLSD's gap uses the
  rollout-time log-probs (`old_logprobs`) and λ at the training iteration (counted from 1), as
  the authors compute it once per iteration before the actor update;
- L_ent: agg(entropy of the current policy over the full vocabulary), with gradient;
- L_kl: agg(kl_penalty(logprobs, ref_logprobs, kl_kind)), skipped when kl_coef is 0;
- L_distill: the preset's distillation loss with teacher_logprobs (skill_sd also gets the
  old log-probs for its on-policy ratio).
Every term is aggregated with the preset's `agg_mode`, so one micro-batch weight (batch.py) scales
the whole micro-batch loss. Logged besides each term's own metrics: `entropy`, `kl_loss`, `loss`,
and, with a teacher, `teacher_gap` (masked mean of δ = teacher − student), its masked standard
deviation `teacher_student_gap_std`, and `teacher_student_gap_rms` = sqrt(mean δ²), which is the
quantity the authors log under the name `teacher_student_gap_std`.

Departure: micro-batches are weighted by their share of the mini-batch's tokens (batch.py), which
makes gradient accumulation exact for token-mean; the authors divide each micro-batch's loss by the
number of micro-batches, which equals ours only when every micro-batch holds as many tokens.

SFT (`sft_loss`): the negative log-likelihood of the trained (assistant) tokens, token-mean.
"""

from __future__ import annotations

import inspect

import torch

from sdar_core.algos import (
    Algorithm,
    agg_loss,
    get_distill_loss,
    get_policy_loss,
    kl_penalty,
    masked_mean,
    rlsd_lambda,
    rlsd_token_advantages,
)
from sdar_core.errors import SdarError
from sdar_core.train.batch import MicroBatch

__all__ = ["RLSettings", "rl_loss", "sft_loss"]


class RLSettings:
    """Per-update numbers that are not part of the preset: clip ranges and the training
    iteration (1 for the run's first update; drives RLSD's λ)."""

    def __init__(self, *, clip: dict[str, float], iteration: int) -> None:
        self.clip = clip
        self.iteration = iteration


def rl_loss(
    outputs: torch.Tensor | tuple[torch.Tensor, torch.Tensor],
    batch: MicroBatch,
    algo: Algorithm,
    settings: RLSettings,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The preset's loss on one micro-batch. `outputs` are the (B, T) log-probs carrying the
    gradient, or (log-probs, entropy) when the preset has an entropy bonus."""
    logprobs, entropy = outputs if isinstance(outputs, tuple) else (outputs, None)
    cols, mask, agg = batch.columns, batch.response_mask, algo.agg_mode
    advantages = cols["advantages"]  # (B, T)
    metrics: dict[str, float] = {}
    if algo.token_advantage_transform == "rlsd":
        kw = algo.token_advantage_kwargs
        lam = rlsd_lambda(settings.iteration, lam0=kw["lam0"], decay_steps=int(kw["decay_steps"]))
        advantages = rlsd_token_advantages(
            advantages, cols["old_logprobs"], cols["teacher_logprobs"], mask, lam=lam, eps=kw["eps"]
        )  # (B, T)
        metrics["rlsd/lambda"] = lam
    pg, pg_metrics = get_policy_loss(algo.policy_loss)(
        logprobs, cols["old_logprobs"], advantages, mask, agg_mode=agg, **settings.clip
    )
    metrics |= pg_metrics
    loss = algo.pg_coef * pg
    if algo.entropy_coeff > 0:
        if entropy is None:
            raise SdarError(
                f"algorithm {algo.name!r} has an entropy bonus but the policy returned no "
                "entropy: build PolicyHead with with_entropy=True"
            )
        ent = agg_loss(entropy, mask, agg)
        loss = loss - algo.entropy_coeff * ent
        metrics["entropy"] = float(ent.detach())
    if algo.kl_coef > 0:
        kl = agg_loss(kl_penalty(logprobs, cols["ref_logprobs"], algo.kl_kind), mask, agg)
        loss = loss + algo.kl_coef * kl
        metrics["kl_loss"] = float(kl.detach())
    if algo.distill_loss != "none":
        distill, distill_metrics = _distill(logprobs, batch, algo)
        loss = loss + algo.distill_coef * distill
        metrics |= distill_metrics
    if "teacher_logprobs" in cols:
        metrics |= _gap_metrics(cols["teacher_logprobs"] - logprobs.detach(), mask)
    metrics["loss"] = float(loss.detach())
    return loss, metrics


def _gap_metrics(gap: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    """Mean, std and RMS of the (B, T) teacher − student gap over the trained tokens."""
    gap = torch.where(mask.bool(), gap, torch.zeros_like(gap))
    mean = masked_mean(gap, mask)
    return {
        "teacher_gap": float(mean),
        "teacher_student_gap_std": float(masked_mean((gap - mean) ** 2, mask).sqrt()),
        "teacher_student_gap_rms": float(masked_mean(gap**2, mask).sqrt()),
    }


def _distill(logprobs: torch.Tensor, batch: MicroBatch, algo: Algorithm):
    fn = get_distill_loss(algo.distill_loss)
    extra = {}
    if "old_logprobs" in inspect.signature(fn).parameters:
        extra["old_logprobs"] = batch.columns["old_logprobs"]
    return fn(
        logprobs,
        batch.columns["teacher_logprobs"],
        batch.response_mask,
        agg_mode=algo.agg_mode,
        **algo.distill_kwargs,
        **extra,
    )


def sft_loss(logprobs: torch.Tensor, batch: MicroBatch) -> tuple[torch.Tensor, dict[str, float]]:
    """Token-mean negative log-likelihood of the trained tokens; logprobs (B, T)."""
    loss = agg_loss(-logprobs, batch.response_mask, "token-mean")
    return loss, {"loss": float(loss.detach()), "nll": float(loss.detach())}
