"""Every training preset's total loss and gradient against a transcription of the authors' code
(ZJU-REAL/SDAR, verl-agent based: `compute_policy_loss`, `kl_penalty` low_var_kl, `agg_loss`
token-mean, `compute_sdar_loss`, `compute_sdl_loss`, `compute_rlsd_token_advantage`, the entropy
bonus of dp_actor.py, `apply_invalid_action_penalty` + `compute_grpo_outcome_advantage` with
`compute_mean_std_cross_steps=True`), in float64 on random tensors, to 1e-10.

The transcription is written out here, independently of sdar_core.algos, from the formulas of the
authors' functions (their names in comments), so a change to our presets or losses that departs
from theirs fails here.
"""

from __future__ import annotations

import math

import pytest
import torch

from sdar_core.algos import get_algorithm
from sdar_core.train.batch import MicroBatch
from sdar_core.train.objective import RLSettings, rl_loss
from sdar_core.train.update import build_rl_samples

F64 = torch.float64
B, T = 6, 7


def _token_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # agg_loss "token-mean"
    return (x * mask).sum() / mask.sum()


def _pg_loss(logp, old, adv, mask, low=0.2, high=0.2, c=3.0):  # compute_policy_loss (vanilla)
    neg_kl = torch.clamp(logp - old, min=-20.0, max=20.0)
    ratio = torch.exp(neg_kl)
    losses1 = -adv * ratio
    losses2 = -adv * torch.clamp(ratio, 1 - low, 1 + high)
    clip1 = torch.maximum(losses1, losses2)
    clip2 = torch.min(-adv * c, clip1)
    return _token_mean(torch.where(adv < 0, clip2, clip1), mask)


def _low_var_kl(logp, ref):  # kl_penalty(..., "low_var_kl")
    kl = torch.clamp(ref - logp, min=-20, max=20)
    return torch.clamp(torch.exp(kl) - kl - 1, min=-10, max=10)


def _sdar(logp, teacher, mask, beta):  # compute_sdar_loss
    gate = torch.sigmoid(beta * (teacher - logp.detach())).detach()
    return _token_mean(gate * (teacher - logp), mask)


def _sdl(logp, teacher, old, mask):  # compute_sdl_loss
    ell = logp - teacher
    k3 = torch.exp((-ell).clamp(max=20.0)) - 1.0 + ell
    rho = torch.exp((logp - old).clamp(max=10.0))
    return _token_mean(rho * k3, mask)


def _rlsd_adv(adv, old, teacher, mask, lam, eps):  # compute_rlsd_token_advantage
    first = mask.int().argmax(dim=-1)
    a_seq = adv[torch.arange(adv.shape[0]), first]
    w = torch.exp(torch.sign(a_seq)[:, None] * (teacher - old)).clamp(1 - eps, 1 + eps)
    return a_seq[:, None] * ((1 - lam) + lam * w) * mask


def _authors_total(name, logp, entropy, cols, mask, iteration):
    """dp_actor.update_policy's policy_loss for the authors' script of each preset."""
    adv = cols["advantages"]
    if name == "rlsd":  # rlsd_lambda=0.5, warmdown_steps=100, λ at global_steps (from 1)
        lam = 0.0 if iteration >= 100 else 0.5 * (1.0 - iteration / 100)
        adv = _rlsd_adv(adv, cols["old_logprobs"], cols["teacher_logprobs"], mask, lam, 0.2)
    pg_coef = 0.0 if name == "opsd" else 1.0  # opsd scripts: pg_loss_coef=0
    loss = _pg_loss(logp, cols["old_logprobs"], adv, mask) * pg_coef
    loss = loss - _token_mean(entropy, mask) * 0.001  # entropy_coeff (verl default)
    loss = loss + _token_mean(_low_var_kl(logp, cols["ref_logprobs"]), mask) * 0.01
    teacher = cols["teacher_logprobs"]
    if name in ("sdar", "opsd"):
        loss = loss + _sdar(logp, teacher, mask, beta=5.0) * 0.01
    elif name == "grpo_opsd":
        loss = loss + _sdar(logp, teacher, mask, beta=0.0) * 0.01
    elif name == "skill_sd":  # sdl_lambda=0.001
        loss = loss + _sdl(logp, teacher, cols["old_logprobs"], mask) * 0.001
    return loss


def _random_batch(seed: int):
    gen = torch.Generator().manual_seed(seed)
    mask = (torch.rand(B, T, generator=gen) > 0.25).to(F64)
    mask[:, 0] = 1.0
    logits = torch.randn(B, T, generator=gen, dtype=F64)
    logp = (-torch.rand(B, T, generator=gen, dtype=F64) * 3).requires_grad_()
    entropy = (torch.rand(B, T, generator=gen, dtype=F64) * 2 + logits * 0.1).requires_grad_()

    def near(scale):
        return (logp.detach() + scale * torch.randn(B, T, generator=gen, dtype=F64)) * mask

    adv = torch.randn(B, 1, generator=gen, dtype=F64).expand(B, T) * mask
    cols = {
        "response_mask": mask,
        "advantages": adv.contiguous(),
        "old_logprobs": near(0.3),
        "ref_logprobs": near(0.5),
        "teacher_logprobs": near(0.8),
    }
    batch = MicroBatch(
        input_ids=torch.zeros(B, T, dtype=torch.long),
        attention_mask=torch.ones(B, T, dtype=torch.long),
        positions=torch.zeros(B, T, dtype=torch.long),
        labels=torch.zeros(B, T, dtype=torch.long),
        columns=cols,
    )
    return logp, entropy, batch


@pytest.mark.parametrize(
    "name", ["grpo", "skill_grpo", "opsd", "grpo_opsd", "skill_sd", "rlsd", "sdar"]
)
@pytest.mark.parametrize("iteration", [1, 37])
def test_preset_loss_and_gradient_match_the_authors(name, iteration):
    for seed in range(3):
        logp, entropy, batch = _random_batch(seed)
        settings = RLSettings(clip={}, iteration=iteration)
        ours, _ = rl_loss((logp, entropy), batch, get_algorithm(name), settings)
        ours_grads = torch.autograd.grad(ours, (logp, entropy))
        theirs = _authors_total(name, logp, entropy, batch.columns, batch.response_mask, iteration)
        their_grads = torch.autograd.grad(theirs, (logp, entropy))
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)
        for a, b in zip(ours_grads, their_grads, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def _authors_advantages(scores, group_ids, eps=1e-6):
    """compute_grpo_outcome_advantage(compute_mean_std_cross_steps=True) on per-sample scores."""
    by_group: dict[str, list[float]] = {}
    for s, g in zip(scores, group_ids, strict=True):
        by_group.setdefault(g, []).append(s)
    out = []
    for s, g in zip(scores, group_ids, strict=True):
        values = torch.tensor(by_group[g], dtype=F64)
        mean, std = (values.mean(), values.std()) if len(values) > 1 else (0.0, 1.0)
        out.append(float((s - mean) / (std + eps)))
    return out


def _mixed_rows():
    """Two groups of per-step samples; episodes mix valid and invalid steps (the case that used
    to raise), with different lengths and rewards."""
    episodes = [  # (group, member, episode_reward, per-step invalid flags)
        ("g0", 0, 10.0, [0, 1, 0]),
        ("g0", 1, 0.0, [1, 1]),
        ("g0", 2, 10.0, [0]),
        ("g1", 0, 0.0, [0, 0, 1, 0]),
        ("g1", 1, 10.0, [1, 0]),
        ("g1", 2, 0.0, [0, 0]),
    ]
    rows = {k: [] for k in ("group_id", "member", "episode_reward", "n_invalid_actions")}
    for g, m, r, flags in episodes:
        for flag in flags:
            rows["group_id"].append(g)
            rows["member"].append(m)
            rows["episode_reward"].append(r)
            rows["n_invalid_actions"].append(flag)
    n = len(rows["group_id"])
    rows |= {
        "prompt_ids": [[1, 2]] * n,
        "response_ids": [[3, 4, 5]] * n,
        "response_mask": [[1, 1, 1]] * n,
        "old_logprobs": [[-1.0, -1.0, -1.0]] * n,
    }
    return rows


def test_step_rewards_and_pooled_statistics_match_the_authors():
    rows = _mixed_rows()
    samples, metrics = build_rl_samples(rows, get_algorithm("grpo"))
    # apply_invalid_action_penalty: the penalty lands on the step whose action was invalid
    scores = [
        r - 0.1 * f for r, f in zip(rows["episode_reward"], rows["n_invalid_actions"], strict=True)
    ]
    expected = _authors_advantages(scores, rows["group_id"])
    got = [s.columns["advantages"][0] for s in samples]
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert metrics["reward/mean"] == pytest.approx(sum(scores) / len(scores), rel=1e-12)
    # the step samples of a mixed episode differ (valid vs invalid step)
    assert got[0] != got[1] and math.isclose(got[0], got[2])


def test_episode_statistics_stay_available_by_name():
    rows = _mixed_rows()
    algo = get_algorithm("grpo").with_overrides(stats_over="episode")
    samples, _ = build_rl_samples(rows, algo)
    # one unit per episode: episode reward minus the penalty of all its invalid actions
    ep_reward = {"g0/0": 9.9, "g0/1": -0.2, "g0/2": 10.0, "g1/0": -0.1, "g1/1": 9.9, "g1/2": 0.0}
    keys = [f"{g}/{m}" for g, m in zip(rows["group_id"], rows["member"], strict=True)]
    groups = {"g0": ["g0/0", "g0/1", "g0/2"], "g1": ["g1/0", "g1/1", "g1/2"]}
    for sample, key in zip(samples, keys, strict=True):
        values = torch.tensor([ep_reward[k] for k in groups[key[:2]]], dtype=F64)
        want = (ep_reward[key] - values.mean()) / (values.std() + 1e-6)
        assert sample.columns["advantages"][0] == pytest.approx(float(want), rel=1e-9)
