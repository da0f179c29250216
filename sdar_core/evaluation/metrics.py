"""Evaluation metrics per environment, chosen by name (`register_eval_metrics("alfworld")`), and
the confidence intervals they use.

Every metrics function takes the episode results (dicts with task_type, run, won, reward, steps,
invalid_actions) and k, and returns a flat `{name: float}` dict (KFP-style metrics).

ALFWorld: success rate per task type, named by the paper's six columns (pick, look, clean, heat,
cool, pick2; a type absent from the validation set is left out rather than reported as 0), and
`success/all`, which is avg@k (the mean over the k runs of each run's success rate, i.e. the mean
over every episode). Two 95% intervals for `success/all`:
- Wilson score interval over all n = tasks x k episodes (`success/all_wilson_low/high`); it treats
  episodes as independent draws, which they are not quite when the same tasks repeat over seeds;
- with k >= 2, a Student-t interval over the k per-run success rates
  (`success/all_t_low/high`), which measures run-to-run (seed) variation on the fixed task set.

WebShop: the same success columns, one per product category (the goal's `task_type`), plus the
paper's two columns from `sdar_core.envs.webshop.eval_metrics`: `score` (100 x mean WebShop reward
in [0, 1], read from each episode's `webshop_reward`; an episode that bought nothing scores 0) and
`accuracy` (100 x the fraction of episodes with reward 1, i.e. 100 x `success/all`).
Search-QA: the success columns per data source (`task_type` is the data source), plus the paper's
exact-match columns from `sdar_core.envs.search.eval_metrics` (`em/<source>`, `em/avg` over the
sources present, `em/all`, `n/<source>`), in percent; an episode is won exactly when its answer
matches (the search environment's `won` is its exact match), so `em` is read from `won`.
Both take their columns from the environment packages rather than re-deriving them here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from sdar_core.algos import Registry

__all__ = ["EVAL_METRICS", "register_eval_metrics", "t_interval", "wilson_interval"]

MetricsFn = Callable[[Sequence[dict[str, Any]], int], dict[str, float]]
EVAL_METRICS: Registry[MetricsFn] = Registry("evaluation metrics (environment)")

# Two-sided 97.5% quantiles of Student's t for 1..30 degrees of freedom.
_T975 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)
_Z975 = 1.959964

ALFWORLD_COLUMNS = {
    "pick_and_place_simple": "pick",
    "look_at_obj_in_light": "look",
    "pick_clean_then_place_in_recep": "clean",
    "pick_heat_then_place_in_recep": "heat",
    "pick_cool_then_place_in_recep": "cool",
    "pick_two_obj_and_place": "pick2",
}


def register_eval_metrics(env: str) -> Callable[[MetricsFn], MetricsFn]:
    return EVAL_METRICS.register(env)


def wilson_interval(successes: int, n: int, *, z: float = _Z975) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (0, 1 when n = 0)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def t_interval(values: Sequence[float]) -> tuple[float, float]:
    """95% Student-t interval of the mean of `values` (needs at least two)."""
    n = len(values)
    if n < 2:
        raise ValueError("a t-interval needs at least two values")
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    quantile = _T975[n - 2] if n - 1 <= len(_T975) else _Z975
    half = quantile * sd / math.sqrt(n)
    return mean - half, mean + half


def success_metrics(episodes: Sequence[dict[str, Any]], k: int, columns: dict[str, str]):
    """Success per task-type column and overall, with the intervals of the module docstring."""
    metrics: dict[str, float] = {}
    for task_type, column in columns.items():
        won = [e["won"] for e in episodes if e["task_type"] == task_type]
        if won:
            metrics[f"success/{column}"] = sum(won) / len(won)
    wins = sum(e["won"] for e in episodes)
    metrics["success/all"] = wins / max(1, len(episodes))
    metrics["success/all_wilson_low"], metrics["success/all_wilson_high"] = wilson_interval(
        wins, len(episodes)
    )
    if k >= 2:
        per_run = []
        for run in range(k):
            won = [e["won"] for e in episodes if e["run"] == run]
            per_run.append(sum(won) / max(1, len(won)))
        metrics["success/all_t_low"], metrics["success/all_t_high"] = t_interval(per_run)
    metrics["episodes"] = float(len(episodes))
    metrics["mean_steps"] = sum(e["steps"] for e in episodes) / max(1, len(episodes))
    metrics["invalid_action_rate"] = sum(e["invalid_actions"] for e in episodes) / max(
        1, sum(e["steps"] for e in episodes)
    )
    return metrics


@register_eval_metrics("alfworld")
def alfworld_metrics(episodes: Sequence[dict[str, Any]], k: int) -> dict[str, float]:
    return success_metrics(episodes, k, ALFWORLD_COLUMNS)


def _columns(episodes: Sequence[dict[str, Any]]) -> dict[str, str]:
    """One success column per task type present, named by the task type itself."""
    return {t: t for t in sorted({str(e["task_type"]) for e in episodes})}


@register_eval_metrics("webshop")
def webshop_metrics(episodes: Sequence[dict[str, Any]], k: int) -> dict[str, float]:
    from types import SimpleNamespace

    from sdar_core.envs.webshop import eval_metrics

    infos = [
        SimpleNamespace(info={"webshop_reward": e.get("webshop_reward"), "won": e["won"]})
        for e in episodes
    ]
    paper = eval_metrics(infos)
    return success_metrics(episodes, k, _columns(episodes)) | {
        "score": paper["score"],
        "accuracy": paper["accuracy"],
    }


@register_eval_metrics("search")
def search_metrics(episodes: Sequence[dict[str, Any]], k: int) -> dict[str, float]:
    from sdar_core.envs.search import eval_metrics

    infos = [{"data_source": e["task_type"], "em": float(e["won"])} for e in episodes]
    return success_metrics(episodes, k, _columns(episodes)) | eval_metrics(infos)


def paired_difference_interval(
    after: Sequence[bool], before: Sequence[bool], *, z: float = _Z975
) -> tuple[float, float, float]:
    """(difference, low, high): the success rate `after` minus `before`, measured on the same
    episodes (same games, same seeds, in the same order), with Newcombe's (1998) hybrid score
    interval for paired proportions (his method 10): the Wilson intervals of both rates,
    combined with the correlation phi of the 2x2 table of outcomes (phi's numerator corrected by
    n/2 when positive, and phi = 0 when a margin is empty)."""
    if len(after) != len(before) or not after:
        raise ValueError(
            f"paired outcomes must be two non-empty lists of equal length, got {len(after)} "
            f"and {len(before)}: evaluate both checkpoints on the same episodes"
        )
    n = len(after)
    both = sum(1 for a, b in zip(after, before, strict=True) if a and b)
    only_after = sum(1 for a, b in zip(after, before, strict=True) if a and not b)
    only_before = sum(1 for a, b in zip(after, before, strict=True) if b and not a)
    neither = n - both - only_after - only_before
    p1, p2 = (both + only_after) / n, (both + only_before) / n
    l1, u1 = wilson_interval(both + only_after, n, z=z)
    l2, u2 = wilson_interval(both + only_before, n, z=z)
    wins_after, wins_before = both + only_after, both + only_before
    margins = wins_after * (n - wins_after) * wins_before * (n - wins_before)
    phi = 0.0
    if margins > 0:
        cross = both * neither - only_after * only_before
        if cross > 0:
            cross = max(cross - n / 2, 0.0)
        phi = cross / math.sqrt(margins)
    low = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    high = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    diff = p1 - p2
    return diff, max(-1.0, diff - low), min(1.0, diff + high)
