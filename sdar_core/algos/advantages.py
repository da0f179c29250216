"""Outcome advantage estimators (GRPO, RLOO) for groups of samples, multi-turn aware.

Each estimator takes `(rewards: (N,), group_ids: (N,), *, episode_ids=None, norm_by_std=True,
eps=1e-6, stats_over="episode")` and returns `(advantages: (N,), metrics)`. Ids are an int tensor
or any sequence of hashables (e.g. task uids).

Multi-turn. With per-step training samples, one episode yields several samples (one per turn);
`episode_ids` says which samples belong together.
- `stats_over="step"` (the authors' `compute_mean_std_cross_steps=True`, every preset's choice):
  each step sample is a unit with its own reward — in the authors' assignment the episode's
  reward minus the invalid-action penalty of *that* step, so the samples of one episode may
  differ. Statistics are pooled over all step samples of the group: an episode with k steps
  enters the mean and std k times. This equals running the estimator without `episode_ids`.
- `stats_over="episode"` (standard episode-level GRPO, kept by name): one reward per episode;
  group statistics are computed over the group's episodes, and every step sample gets its
  episode's advantage. Each trajectory counts once, whatever its length. Every sample of one
  episode must then carry the same reward; anything else raises SdarError.
Without `episode_ids` every sample is its own episode and both modes agree. The samples of one
episode must share a group id in both modes.

Departures from verl: groups with a single episode get advantage 0 (verl uses mean 0 / std 1 there,
i.e. the raw reward), because one sample carries no relative signal. Groups whose rewards are all
equal get exactly 0 (not a rounding residue). The std is the unbiased one (torch.std default,
Bessel-corrected), as in verl. Statistics are computed in float64 and cast back.
"""

from collections.abc import Callable, Hashable, Sequence

import torch

from sdar_core.algos.registry import Registry
from sdar_core.errors import ConfigError, SdarError

Ids = torch.Tensor | Sequence[Hashable]
EstimatorFn = Callable[..., tuple[torch.Tensor, dict[str, float]]]
ADVANTAGE_ESTIMATORS: Registry[EstimatorFn] = Registry("advantage estimator")
STATS_OVER = ("episode", "step")


def get_advantage_estimator(name: str) -> EstimatorFn:
    return ADVANTAGE_ESTIMATORS.get(name)


def register_advantage_estimator(name: str) -> Callable[[EstimatorFn], EstimatorFn]:
    return ADVANTAGE_ESTIMATORS.register(name)


def list_advantage_estimators() -> list[str]:
    return ADVANTAGE_ESTIMATORS.names()


@register_advantage_estimator("grpo")
def grpo(
    rewards: torch.Tensor,
    group_ids: Ids,
    *,
    episode_ids: Ids | None = None,
    norm_by_std: bool = True,
    eps: float = 1e-6,
    stats_over: str = "episode",
) -> tuple[torch.Tensor, dict[str, float]]:
    """GRPO: A = (r - mean_group) / (std_group + eps); `norm_by_std=False` is Dr. GRPO (r - mean).

    std is the unbiased (Bessel-corrected) group std, as in verl. A group with one episode gets 0.
    """

    def core(r: torch.Tensor, g: torch.Tensor, stats: "_GroupStats") -> torch.Tensor:
        adv = r - stats.mean[g]  # (U,)
        return adv / (stats.std[g] + eps) if norm_by_std else adv

    return _estimate(core, rewards, group_ids, episode_ids, stats_over)


@register_advantage_estimator("rloo")
def rloo(
    rewards: torch.Tensor,
    group_ids: Ids,
    *,
    episode_ids: Ids | None = None,
    norm_by_std: bool = False,
    eps: float = 1e-6,
    stats_over: str = "episode",
) -> tuple[torch.Tensor, dict[str, float]]:
    """RLOO: A_i = r_i - mean_{j != i} r_j = G / (G - 1) * (r_i - mean_group).

    `norm_by_std=True` additionally divides by (unbiased group std + eps); off by default, as in
    the RLOO paper. A group with one episode gets 0.
    """

    def core(r: torch.Tensor, g: torch.Tensor, stats: "_GroupStats") -> torch.Tensor:
        n = stats.count[g]  # (U,)
        adv = (r - stats.mean[g]) * n / (n - 1).clamp(min=1)  # (U,)
        return adv / (stats.std[g] + eps) if norm_by_std else adv

    return _estimate(core, rewards, group_ids, episode_ids, stats_over)


class _GroupStats:
    """Per-group count, mean, unbiased std and whether all rewards are equal (float64, (K,))."""

    def __init__(self, r: torch.Tensor, g: torch.Tensor) -> None:
        k = int(g.max()) + 1 if g.numel() else 0
        zeros = torch.zeros(k, dtype=r.dtype, device=r.device)
        self.count = zeros.index_add(0, g, torch.ones_like(r))
        self.mean = zeros.index_add(0, g, r) / self.count.clamp(min=1)
        sq_dev = (r - self.mean[g]) ** 2
        self.std = (zeros.index_add(0, g, sq_dev) / (self.count - 1).clamp(min=1)).sqrt()
        r_max = zeros.scatter_reduce(0, g, r, "amax", include_self=False)
        r_min = zeros.scatter_reduce(0, g, r, "amin", include_self=False)
        self.flat = r_max == r_min  # (K,) all rewards equal (incl. single-episode groups)


def _estimate(
    core: Callable[[torch.Tensor, torch.Tensor, _GroupStats], torch.Tensor],
    rewards: torch.Tensor,
    group_ids: Ids,
    episode_ids: Ids | None,
    stats_over: str,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Runs `core` over the units (episodes or step samples) and maps the result to samples."""
    if stats_over not in STATS_OVER:
        raise ConfigError(f"stats_over must be one of {', '.join(STATS_OVER)}, got {stats_over!r}")
    if rewards.dim() != 1:
        raise SdarError(f"rewards must be (N,), got shape {tuple(rewards.shape)}")
    r = rewards.detach().to(torch.float64)
    groups = dense_ids(group_ids, len(r), "group_ids", r.device)
    unit_r, unit_g, sample_to_unit = r, groups, torch.arange(len(r), device=r.device)
    if episode_ids is not None:
        episodes = dense_ids(episode_ids, len(r), "episode_ids", r.device)
        same_reward = stats_over == "episode"
        ep_r, ep_g = _episode_table(r, groups, episodes, episode_ids, same_reward=same_reward)
        if same_reward:
            unit_r, unit_g, sample_to_unit = ep_r, ep_g, episodes
    stats = _GroupStats(unit_r, unit_g)
    unit_adv = core(unit_r, unit_g, stats)  # (U,)
    unit_adv = torch.where(stats.flat[unit_g], torch.zeros_like(unit_adv), unit_adv)
    advantages = unit_adv[sample_to_unit].to(rewards.dtype)  # (N,)
    return advantages, _metrics(advantages, stats)


def _metrics(advantages: torch.Tensor, stats: _GroupStats) -> dict[str, float]:
    if advantages.numel() == 0:
        return {}
    return {
        "advantages/mean": float(advantages.mean()),
        "advantages/abs_mean": float(advantages.abs().mean()),
        "advantages/max": float(advantages.max()),
        "advantages/min": float(advantages.min()),
        "advantages/flat_group_ratio": float(stats.flat.double().mean()),
    }


def dense_ids(ids: Ids, n: int, what: str, device: torch.device) -> torch.Tensor:
    """Maps ids (int tensor or hashables) to a (N,) long tensor of 0..K-1, in first-seen order."""
    if len(ids) != n:
        raise SdarError(
            f"{what} has {len(ids)} entries but rewards has {n}: give one id per sample"
        )
    if isinstance(ids, torch.Tensor):
        if ids.dim() != 1 or ids.is_floating_point():
            raise SdarError(f"{what} as a tensor must be a 1-D integer tensor, got {ids.dtype}")
        return torch.unique(ids, return_inverse=True)[1].to(device)
    index: dict[Hashable, int] = {}
    try:
        dense = [index.setdefault(i, len(index)) for i in ids]
    except TypeError as e:
        raise SdarError(f"{what} must be hashable (str, int, tuple): {e}") from None
    return torch.tensor(dense, dtype=torch.long, device=device)


def _episode_table(
    r: torch.Tensor, groups: torch.Tensor, episodes: torch.Tensor, raw_ids: Ids, *, same_reward
) -> tuple[torch.Tensor, torch.Tensor]:
    """One reward and group per episode; raises if an episode's samples disagree on the group
    (or, with `same_reward`, on the reward)."""
    n_episodes = int(episodes.max()) + 1 if episodes.numel() else 0
    positions = torch.arange(len(r), device=r.device)
    first = torch.full((n_episodes,), len(r), dtype=torch.long, device=r.device)
    first = first.scatter_reduce(0, episodes, positions, "amin")  # (E,) first sample per episode
    ep_r, ep_g = r[first], groups[first]
    bad_group = groups != ep_g[episodes]  # (N,)
    if bool(bad_group.any()):
        i = int(bad_group.nonzero()[0])
        raise SdarError(
            f"samples {int(first[episodes[i]])} and {i} share episode id "
            f"{_id_at(raw_ids, i)!r} but have different group ids: every step sample of an "
            "episode must carry the episode's group id"
        )
    bad = r != ep_r[episodes]  # (N,)
    if same_reward and bool(bad.any()):
        i = int(bad.nonzero()[0])
        j = int(first[episodes[i]])
        raise SdarError(
            f"samples {j} and {i} share episode id {_id_at(raw_ids, i)!r} but have different "
            f"rewards ({float(r[j])} vs {float(r[i])}): with stats_over='episode' every step "
            "sample of an episode must carry the episode's reward (pass one reward per "
            "episode, or use stats_over='step', which pools per-step rewards)"
        )
    return ep_r, ep_g


def _id_at(ids: Ids, i: int) -> object:
    item = ids[i]
    return item.item() if isinstance(item, torch.Tensor) else item
