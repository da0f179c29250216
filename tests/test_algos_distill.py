"""Self-distillation losses (sdar, opsd, skill_sd, none) and the RLSD token-advantage transform."""

import math

import pytest
import torch

from sdar_core.algos import (
    get_distill_loss,
    list_distill_losses,
    opsd,
    rlsd_lambda,
    rlsd_token_advantages,
    sdar,
    skill_sd,
)
from sdar_core.errors import ConfigError

F64 = torch.float64


def _batch(seed: int = 0, shape=(3, 7)):
    gen = torch.Generator().manual_seed(seed)
    student = (-torch.rand(shape, generator=gen, dtype=F64) * 3).requires_grad_()
    teacher = -torch.rand(shape, generator=gen, dtype=F64) * 3
    mask = torch.rand(shape, generator=gen) > 0.3
    mask[0, 0] = True
    return student, teacher, mask


def test_registered_distill_losses() -> None:
    assert list_distill_losses() == ["none", "opsd", "sdar", "skill_sd"]


def test_sdar_hand_computed() -> None:
    # student [-1, -2], teacher [-0.5, -2.5], beta 5: gap = [0.5, -0.5]
    # g = [sigmoid(2.5), sigmoid(-2.5)] = [0.9241418, 0.0758582]
    # loss_mat = g * (teacher - student) = [0.5 g0, -0.5 g1]; token-mean = 0.5 (g0 - g1) / 2
    student = torch.tensor([[-1.0, -2.0]], dtype=F64, requires_grad=True)
    teacher = torch.tensor([[-0.5, -2.5]], dtype=F64)
    loss, metrics = sdar(student, teacher, torch.ones(1, 2), beta=5.0)
    g0, g1 = 1 / (1 + math.exp(-2.5)), 1 / (1 + math.exp(2.5))
    assert loss.item() == pytest.approx(0.25 * (g0 - g1), rel=1e-12)
    assert loss.item() == pytest.approx(0.2120709, rel=1e-6)
    assert metrics == pytest.approx(
        {"sdar/gate_mean": 0.5, "sdar/gate_active_ratio": 0.5, "sdar/gap_mean": 0.0,
         "sdar/loss": 0.25 * (g0 - g1)},
        rel=1e-12, abs=1e-15,
    )  # fmt: skip
    loss.backward()  # -g / 2 tokens
    torch.testing.assert_close(student.grad, torch.tensor([[-g0 / 2, -g1 / 2]], dtype=F64))


@pytest.mark.parametrize("agg_mode", ["token-mean", "seq-mean-token-mean"])
@pytest.mark.parametrize("beta", [0.0, 1.0, 5.0])
def test_sdar_gradient_is_minus_gated_score(agg_mode: str, beta: float) -> None:
    """∇L = -agg(g ∇ log π_θ), g = sigmoid(beta (teacher - student)) detached."""
    student, teacher, mask = _batch()
    loss, _ = sdar(student, teacher, mask, beta=beta, agg_mode=agg_mode)
    loss.backward()
    s = student.detach()
    gate = 1.0 / (1.0 + torch.exp(-beta * (teacher - s)))
    m = mask.to(F64)
    if agg_mode == "token-mean":
        weight = m / m.sum()
    else:  # each non-empty row's mean, then the mean over non-empty rows
        n_rows = (m.sum(1) > 0).sum()
        weight = m / m.sum(1, keepdim=True).clamp(min=1) / n_rows
    torch.testing.assert_close(student.grad, -gate * weight, rtol=1e-6, atol=1e-15)
    torch.testing.assert_close(loss, (gate * (teacher - s) * weight).sum(), rtol=1e-6, atol=1e-15)


def test_sdar_gap_from_supplied_logprobs() -> None:
    student, teacher, mask = _batch(1)
    gap_logprobs = student.detach() + 0.3
    loss, metrics = sdar(student, teacher, mask, beta=2.0, gap_logprobs=gap_logprobs)
    loss.backward()
    gate = torch.sigmoid(2.0 * (teacher - gap_logprobs))
    torch.testing.assert_close(student.grad, -gate * mask / mask.sum(), rtol=1e-6, atol=1e-15)
    assert metrics["sdar/gap_mean"] == pytest.approx(float((teacher - gap_logprobs)[mask].mean()))


def test_sdar_beta_zero_is_half_of_opsd() -> None:
    student, teacher, mask = _batch(2)
    loss_sdar, metrics = sdar(student, teacher, mask, beta=0.0)
    (grad_sdar,) = torch.autograd.grad(loss_sdar, student)
    loss_opsd, _ = opsd(student, teacher, mask)
    (grad_opsd,) = torch.autograd.grad(loss_opsd, student)
    assert metrics["sdar/gate_mean"] == 0.5
    torch.testing.assert_close(loss_sdar, 0.5 * loss_opsd, rtol=1e-12, atol=0)
    torch.testing.assert_close(grad_sdar, 0.5 * grad_opsd, rtol=1e-12, atol=0)


def test_sdar_teacher_equal_to_student() -> None:
    student, _, mask = _batch(3)
    loss, metrics = sdar(student, student.detach().clone(), mask)
    assert loss.item() == 0.0
    assert metrics["sdar/gate_mean"] == 0.5 and metrics["sdar/gap_mean"] == 0.0
    assert metrics["sdar/gate_active_ratio"] == 0.0  # g > 0.5 is strict
    loss.backward()
    m = mask.to(F64)
    torch.testing.assert_close(student.grad, -0.5 * m / m.sum(), rtol=1e-12, atol=0)


@pytest.mark.parametrize(("gap", "gate"), [(20.0, 1.0), (-20.0, 0.0)])
def test_sdar_gate_saturates(gap: float, gate: float) -> None:
    student = torch.full((2, 3), -2.0, dtype=F64, requires_grad=True)
    loss, metrics = sdar(student, student.detach() + gap, torch.ones(2, 3), beta=5.0)
    loss.backward()
    assert metrics["sdar/gate_mean"] == pytest.approx(gate, abs=1e-40)  # sigmoid(±100)
    assert metrics["sdar/gate_active_ratio"] == gate
    torch.testing.assert_close(
        student.grad, torch.full((2, 3), -gate / 6, dtype=F64), atol=1e-40, rtol=1e-12
    )


@pytest.mark.parametrize("name", ["sdar", "opsd", "skill_sd"])
def test_masked_tokens_change_nothing(name: str) -> None:
    student, teacher, mask = _batch(4)
    loss_fn = get_distill_loss(name)
    loss_a, metrics_a = loss_fn(student, teacher, mask)
    (grad_a,) = torch.autograd.grad(loss_a, student)
    other_student = torch.where(mask, student.detach(), -7.0).requires_grad_()
    other_teacher = torch.where(mask, teacher, float("nan"))  # padding from the teacher pass
    loss_b, metrics_b = loss_fn(other_student, other_teacher, mask)
    (grad_b,) = torch.autograd.grad(loss_b, other_student)
    torch.testing.assert_close(loss_a, loss_b, rtol=0, atol=0)
    torch.testing.assert_close(grad_a, grad_b, rtol=0, atol=0)
    assert metrics_a == metrics_b


def test_opsd_hand_computed() -> None:
    # loss_mat = teacher - student = [0.5, -0.5] -> token-mean 0; grad = -1 / 2 per token
    student = torch.tensor([[-1.0, -2.0]], dtype=F64, requires_grad=True)
    loss, metrics = opsd(student, torch.tensor([[-0.5, -2.5]], dtype=F64), torch.ones(1, 2))
    loss.backward()
    assert loss.item() == 0.0 and metrics == {"opsd/gap_mean": 0.0, "opsd/loss": 0.0}
    torch.testing.assert_close(student.grad, torch.full((1, 2), -0.5, dtype=F64))


def test_skill_sd_hand_computed() -> None:
    # The authors' compute_sdl_loss: ℓ = s - t, k3 = exp(min(-ℓ, 20)) - 1 + ℓ,
    # ρ = exp(min(s - old, 10)), loss_t = ρ k3 with gradient through both.
    # t0 on-policy: s=-1, t=-2, old=-1: ℓ = 1, k3 = e^-1, ρ = 1
    #   grad = ρ k3 + ρ (1 - e^-ℓ) = e^-1 + 1 - e^-1 = 1
    # t1 off-policy: s=0, t=-1, old=-1: ℓ = 1, k3 = e^-1, log ρ = 1 -> ρ = e (no cap on ρ)
    #   loss = 1; grad = e e^-1 + e (1 - e^-1) = e
    # t2 log-ratio clamped: s=0, t=-1, old=-11: log ρ = 11 -> 10, ρ = e^10 constant
    #   loss = e^10 e^-1 = e^9; grad = e^10 (1 - e^-1)
    # t3 k3 not clamped from above: s=-30, t=0, old=-30: -ℓ = 30 -> 20 in the exponent,
    #   k3 = e^20 - 1 - 30, ρ = 1; grad = k3 + (1 - 0) (the clamped exponent has no gradient)
    # token-mean over 4 tokens
    e = math.e
    student = torch.tensor([[-1.0, 0.0, 0.0, -30.0]], dtype=F64, requires_grad=True)
    teacher = torch.tensor([[-2.0, -1.0, -1.0, 0.0]], dtype=F64)
    old = torch.tensor([[-1.0, -1.0, -11.0, -30.0]], dtype=F64)
    loss, metrics = skill_sd(student, teacher, torch.ones(1, 4), old_logprobs=old)
    k3_big = math.exp(20) - 31
    assert loss.item() == pytest.approx((math.exp(-1) + 1 + math.exp(9) + k3_big) / 4, rel=1e-12)
    assert metrics["skill_sd/clipfrac"] == 0.25
    assert metrics["skill_sd/ratio_mean"] == pytest.approx((1 + e + math.exp(10) + 1) / 4)
    assert metrics["skill_sd/kl_mean"] == pytest.approx((3 * math.exp(-1) + k3_big) / 4)
    loss.backward()
    expected = torch.tensor([[1.0, e, math.exp(10) * (1 - math.exp(-1)), k3_big + 1]], dtype=F64)
    torch.testing.assert_close(student.grad, expected / 4, rtol=1e-12, atol=0)


def test_skill_sd_on_policy_gradient_is_score_function_kl() -> None:
    # On-policy, ∇ = agg((log π_θ - log π_teacher) ∇ log π_θ)
    student, teacher, mask = _batch(5)
    loss, _ = skill_sd(student, teacher, mask)
    loss.backward()
    expected = (student.detach() - teacher) * mask / mask.sum()
    torch.testing.assert_close(student.grad, expected, rtol=1e-10, atol=1e-15)


def test_none_loss_is_zero_and_backpropagates() -> None:
    student = torch.tensor([[-1.0, float("-inf")]], requires_grad=True)
    loss, metrics = get_distill_loss("none")(student, None, torch.ones(1, 2))
    assert loss.item() == 0.0 and metrics == {} and loss.grad_fn is not None
    loss.backward()
    assert torch.equal(student.grad, torch.zeros(1, 2))


def test_distill_losses_check_arguments() -> None:
    student, teacher, mask = _batch()
    with pytest.raises(ValueError, match="shapes must match"):
        sdar(student, teacher[:, :3], mask)
    with pytest.raises(ConfigError, match="log_ratio_clip"):
        skill_sd(student, teacher, mask, log_ratio_clip=0.0)


def test_rlsd_token_advantages_hand_computed() -> None:
    # lam 0.5, eps 0.2, gap = teacher - student = [0.1, -0.5, 0.1, -0.5, 3.0]
    #   t0 A=+1: exp(0.1) = 1.10517 in [0.8, 1.2]      -> 0.5 + 0.5 * 1.10517 = 1.052585
    #   t1 A=+1: exp(-0.5) = 0.6065 -> 0.8            -> 0.5 + 0.4 = 0.9
    #   t2 A=-1: exp(-0.1) = 0.904837                 -> -(0.5 + 0.452419) = -0.952419
    #   t3 A=-1: exp(0.5) = 1.6487 -> 1.2             -> -(0.5 + 0.6) = -1.1
    #   t4 masked                                      -> 0
    adv = torch.tensor([[1.0, 1.0, -1.0, -1.0, 1.0]], dtype=F64)
    student = torch.zeros(1, 5, dtype=F64, requires_grad=True)
    teacher = torch.tensor([[0.1, -0.5, 0.1, -0.5, 3.0]], dtype=F64)
    mask = torch.tensor([[1, 1, 1, 1, 0]])
    out = rlsd_token_advantages(adv, student, teacher, mask, lam=0.5, eps=0.2)
    expected = [0.5 + 0.5 * math.exp(0.1), 0.9, -(0.5 + 0.5 * math.exp(-0.1)), -1.1, 0.0]
    torch.testing.assert_close(out, torch.tensor([expected], dtype=F64), rtol=1e-12, atol=0)
    assert not out.requires_grad  # the gap is detached
    # lam = 0 gives back the advantages (masked); (B,) advantages broadcast
    torch.testing.assert_close(
        rlsd_token_advantages(torch.tensor([2.0], dtype=F64), student, teacher, mask, lam=0.0),
        torch.tensor([[2.0, 2.0, 2.0, 2.0, 0.0]], dtype=F64),
    )


def test_rlsd_lambda_decays_linearly_to_zero() -> None:
    values = [rlsd_lambda(s, lam0=0.8, decay_steps=100) for s in (0, 25, 100, 150)]
    assert values == pytest.approx([0.8, 0.6, 0.0, 0.0])
    with pytest.raises(ConfigError, match="decay_steps"):
        rlsd_lambda(0, lam0=1.0, decay_steps=0)
    with pytest.raises(ConfigError, match="lam must be in"):
        rlsd_token_advantages(
            torch.ones(1, 1), torch.ones(1, 1), torch.ones(1, 1), torch.ones(1, 1), lam=2.0
        )
