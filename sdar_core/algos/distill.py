"""Self-distillation losses over (B, T) per-token log-probs, chosen by name.

Every loss takes `(student_logprobs, teacher_logprobs, response_mask, *, agg_mode="token-mean",
**kw)` and returns `(loss, metrics)`. `student_logprobs` are log π_θ(y_t) of the sampled tokens and
carry the gradient; `teacher_logprobs` are log π_θ(y_t | skills, ...) from the teacher pass (same
weights, privileged context) and are detached inside every loss.

- `sdar` (the paper): δ_t = teacher - student (both detached), g_t = sigmoid(β δ_t) (detached),
  loss_mat = g_t * (teacher_t - student_logprobs_t), so ∇L = -agg(g_t ∇ log π_θ(y_t)).
  `gap_logprobs` lets the caller supply the detached student log-probs used for the gap (e.g. the
  rollout-time log-probs); by default they are `student_logprobs.detach()`. β = 0 gives g ≡ 0.5,
  which is how the authors run their GRPO+OPSD baseline.
- `opsd`: the ungated loss, loss_mat = teacher_t - student_logprobs_t (every token weight 1).
- `skill_sd` (the authors' `compute_sdl_loss`): k3 estimate of KL(student‖teacher) weighted by the
  on-policy ratio, both with gradient through the student log-probs:
      ℓ_t = student_logprobs_t - teacher_t
      k3_t = exp(min(-ℓ_t, 20)) - 1 + ℓ_t          (not clamped from above)
      ρ_t = exp(min(student_logprobs_t - old_logprobs_t, log_ratio_clip))   (log_ratio_clip 10)
      loss_mat = ρ_t · k3_t
  On-policy (old = student, ρ = 1) the gradient is (log π_θ - log π_teacher) ∇ log π_θ per token,
  the score-function gradient of KL(π_θ‖π_teacher). `old_logprobs` defaults to
  student_logprobs.detach().
- `none`: a zero loss still connected to student_logprobs, and empty metrics.
"""

from collections.abc import Callable

import torch

from sdar_core.algos.agg import agg_loss, check_same_shape, masked_mean
from sdar_core.algos.registry import Registry
from sdar_core.errors import ConfigError

_K3_EXP_CLIP = 20.0  # the authors clamp the exponent of k3 (not k3 itself) at 20
DistillLossFn = Callable[..., tuple[torch.Tensor, dict[str, float]]]
DISTILL_LOSSES: Registry[DistillLossFn] = Registry("distill loss")


def get_distill_loss(name: str) -> DistillLossFn:
    return DISTILL_LOSSES.get(name)


def register_distill_loss(name: str) -> Callable[[DistillLossFn], DistillLossFn]:
    return DISTILL_LOSSES.register(name)


def list_distill_losses() -> list[str]:
    return DISTILL_LOSSES.names()


@register_distill_loss("sdar")
def sdar(
    student_logprobs: torch.Tensor,
    teacher_logprobs: torch.Tensor,
    response_mask: torch.Tensor,
    *,
    agg_mode: str = "token-mean",
    beta: float = 5.0,
    gap_logprobs: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Sigmoid-gated self-distillation (SDAR); all tensors (B, T)."""
    gap_source = student_logprobs if gap_logprobs is None else gap_logprobs
    check_same_shape(
        student_logprobs=student_logprobs,
        teacher_logprobs=teacher_logprobs,
        response_mask=response_mask,
        gap_logprobs=gap_source,
    )
    teacher = _detached_masked(teacher_logprobs, response_mask)  # (B, T)
    gap = teacher - _detached_masked(gap_source, response_mask)  # (B, T) δ_t
    gate = torch.sigmoid(beta * gap)  # (B, T) g_t, no gradient
    loss = agg_loss(gate * (teacher - student_logprobs), response_mask, agg_mode)
    with torch.no_grad():
        metrics = {
            "sdar/gate_mean": float(masked_mean(gate, response_mask)),
            "sdar/gate_active_ratio": float(
                masked_mean((gate > 0.5).to(gate.dtype), response_mask)
            ),
            "sdar/gap_mean": float(masked_mean(gap, response_mask)),
            "sdar/loss": float(loss),
        }
    return loss, metrics


@register_distill_loss("opsd")
def opsd(
    student_logprobs: torch.Tensor,
    teacher_logprobs: torch.Tensor,
    response_mask: torch.Tensor,
    *,
    agg_mode: str = "token-mean",
) -> tuple[torch.Tensor, dict[str, float]]:
    """Ungated on-policy self-distillation: every token has weight 1; all tensors (B, T)."""
    check_same_shape(
        student_logprobs=student_logprobs,
        teacher_logprobs=teacher_logprobs,
        response_mask=response_mask,
    )
    teacher = _detached_masked(teacher_logprobs, response_mask)  # (B, T)
    loss = agg_loss(teacher - student_logprobs, response_mask, agg_mode)
    with torch.no_grad():
        gap = teacher - student_logprobs  # (B, T)
        metrics = {
            "opsd/gap_mean": float(masked_mean(gap, response_mask)),
            "opsd/loss": float(loss),
        }
    return loss, metrics


@register_distill_loss("skill_sd")
def skill_sd(
    student_logprobs: torch.Tensor,
    teacher_logprobs: torch.Tensor,
    response_mask: torch.Tensor,
    *,
    agg_mode: str = "token-mean",
    old_logprobs: torch.Tensor | None = None,
    log_ratio_clip: float = 10.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """k3 KL(student‖teacher) times the on-policy ratio (see module docstring); (B, T)."""
    if not log_ratio_clip > 0:
        raise ConfigError(f"log_ratio_clip must be > 0, got {log_ratio_clip}: use 10.0")
    old_source = student_logprobs if old_logprobs is None else old_logprobs
    check_same_shape(
        student_logprobs=student_logprobs,
        teacher_logprobs=teacher_logprobs,
        response_mask=response_mask,
        old_logprobs=old_source,
    )
    old = _detached_masked(old_source, response_mask)  # (B, T)
    teacher = _detached_masked(teacher_logprobs, response_mask)  # (B, T)
    # off the mask every input is 0, so ℓ = 0, k3 = 0 and ρ = 1 there (padding cannot leak)
    student = torch.where(response_mask.bool(), student_logprobs, 0.0)  # (B, T)
    ell = student - teacher  # (B, T)
    k3 = torch.exp((-ell).clamp(max=_K3_EXP_CLIP)) - 1.0 + ell  # (B, T)
    log_ratio = student - old  # (B, T)
    ratio = torch.exp(log_ratio.clamp(max=log_ratio_clip))  # (B, T)
    loss = agg_loss(ratio * k3, response_mask, agg_mode)
    with torch.no_grad():
        metrics = {
            "skill_sd/kl_mean": float(masked_mean(k3, response_mask)),
            "skill_sd/ratio_mean": float(masked_mean(ratio, response_mask)),
            "skill_sd/clipfrac": float(
                masked_mean((log_ratio > log_ratio_clip).to(ratio.dtype), response_mask)
            ),
            "skill_sd/loss": float(loss),
        }
    return loss, metrics


@register_distill_loss("none")
def no_distill(
    student_logprobs: torch.Tensor,
    teacher_logprobs: torch.Tensor | None,
    response_mask: torch.Tensor,
    *,
    agg_mode: str = "token-mean",
) -> tuple[torch.Tensor, dict[str, float]]:
    """Zero loss connected to `student_logprobs` (so backward() always works); teacher unused."""
    # Summing an empty slice gives an exact 0 whatever the values (no inf * 0 = NaN).
    loss = student_logprobs.reshape(-1)[:0].sum()
    return loss, {}


def _detached_masked(values: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """Detached copy with masked-out positions set to 0, so padding (even inf/NaN) from the
    teacher pass cannot leak into gates or gradients through 0 * inf."""
    values = values.detach()
    return torch.where(response_mask.bool(), values, torch.zeros_like(values))
