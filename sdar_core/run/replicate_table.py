"""The replicate's numbers: the final table, the paired differences against GRPO, the per-round
curves with a band over seeds, and the rounds each arm takes to reach a success level.

Everything here is a pure function of `RunOutcome`s (a run's start and final held-out success
plus the per-round histories of `CURVE_METRICS`), so it is tested on small hand-made inputs; the
orchestration (replicate.py) reads those from MLflow.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sdar_core.run.arms import BASELINE
from sdar_core.tracking.plots import mean_interval

__all__ = [
    "CURVE_METRICS",
    "RunOutcome",
    "curves",
    "differences",
    "markdown_table",
    "metric_key",
    "per_round_lines",
    "rounds_to_level",
    "rows",
]

# per-round series the replicate reports (step = round; eval: the checkpoints evaluated)
CURVE_METRICS = (
    "eval/success/all",
    "eval/invalid_action_rate",
    "rollout/success_rate",
    "update/advantages/flat_group_ratio",
    "update/advantages/outcome_flat_group_ratio",
    "update/sdar/gate_mean",
    "update/sdar/gate_active_ratio",
    "teacher/gap_decisive/won_mean",
    "teacher/gap_decisive/lost_mean",
    "teacher/gap_decisive/lost_share_ge1nat",
)
# the table's per-round columns: the last round's value, mean over seeds
LAST_COLUMNS = {
    # a policy that collapses into invalid actions shows here before its success falls
    "held-out invalid actions": "eval/invalid_action_rate",
    "flat groups": "update/advantages/flat_group_ratio",
    "outcome-flat groups": "update/advantages/outcome_flat_group_ratio",
    "gate mean": "update/sdar/gate_mean",
    "gate > 0.5": "update/sdar/gate_active_ratio",
    "decisive gap won": "teacher/gap_decisive/won_mean",
    "decisive gap lost": "teacher/gap_decisive/lost_mean",
    "lost with gap >= 1 nat": "teacher/gap_decisive/lost_share_ge1nat",
}


@dataclass(frozen=True)
class RunOutcome:
    arm: str  # Arm.label
    seed: int
    run_id: str
    start: float
    final: float
    seconds: float
    histories: dict[str, dict[int, float]] = field(default_factory=dict)  # metric -> round -> v
    phases: dict[str, float] = field(default_factory=dict)  # replicate_phases.run_phases


def metric_key(label: str) -> str:
    """`label` with the characters MLflow refuses in a metric name (`@`, `+`) replaced by `_`."""
    return re.sub(r"[^\w./\- ]", "_", label)


def _last(run: RunOutcome, metric: str) -> float | None:
    history = run.histories.get(metric)
    return history[max(history)] if history else None


def rows(
    runs: Sequence[RunOutcome], arms: Sequence[str], display: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Per arm: start, final and change of held-out success (mean over seeds, t-interval), and
    the last round's LAST_COLUMNS (mean over the seeds that logged them; None where none did)."""
    out = []
    for arm in arms:
        group = [r for r in runs if r.arm == arm]
        if not group:
            continue
        row: dict[str, Any] = {
            "arm": arm, "name": (display or {}).get(arm, arm), "seeds": len(group),
        }  # fmt: skip
        for name, values in (
            ("start", [r.start for r in group]),
            ("final", [r.final for r in group]),
            ("change", [r.final - r.start for r in group]),
        ):
            mean, low, high = mean_interval(values)
            row[name], row[f"{name}_low"], row[f"{name}_high"] = mean, low, high
        for column, metric in LAST_COLUMNS.items():
            values = [v for v in (_last(r, metric) for r in group) if v is not None]
            row[column] = sum(values) / len(values) if values else None
        out.append(row)
    return out


def differences(runs: Sequence[RunOutcome], arms: Sequence[str]) -> list[dict[str, Any]]:
    """Each arm minus GRPO in final success, paired by seed (mean, t-interval)."""
    base = {r.seed: r.final for r in runs if r.arm == BASELINE}
    out = []
    for arm in arms:
        if arm == BASELINE:
            continue
        pairs = [r.final - base[r.seed] for r in runs if r.arm == arm and r.seed in base]
        if not pairs:
            continue
        mean, low, high = mean_interval(pairs)
        out.append(
            {"comparison": f"{arm} - {BASELINE}", "seeds": len(pairs), "difference": mean,
             "low": low, "high": high}
        )  # fmt: skip
    return out


def curves(
    runs: Sequence[RunOutcome], arms: Sequence[str]
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """{metric: {arm: [{round, mean, low, high, seeds}, ...]}}: per round the mean over the
    seeds that logged it, with a Student-t 95% band (None for one seed)."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for metric in CURVE_METRICS:
        per_arm = {}
        for arm in arms:
            by_round: dict[int, list[float]] = {}
            for run in runs:
                if run.arm == arm:
                    for step, value in run.histories.get(metric, {}).items():
                        by_round.setdefault(step, []).append(value)
            points = []
            for step in sorted(by_round):
                mean, low, high = mean_interval(by_round[step])
                points.append(
                    {"round": step, "mean": mean, "low": low, "high": high,
                     "seeds": len(by_round[step])}
                )  # fmt: skip
            if points:
                per_arm[arm] = points
        if per_arm:
            out[metric] = per_arm
    return out


def rounds_to_level(
    runs: Sequence[RunOutcome], arms: Sequence[str], *, level: float,
    metric: str = "eval/success/all",
) -> list[dict[str, Any]]:  # fmt: skip
    """Per arm: how many seeds reached `level` of `metric` and the mean first round at which
    they did (None when no seed did): the speed of learning, where the curve allows it."""
    out = []
    for arm in arms:
        group = [r for r in runs if r.arm == arm]
        if not group:
            continue
        firsts = []
        for run in group:
            history = run.histories.get(metric, {})
            reached = [step for step in sorted(history) if history[step] >= level]
            if reached:
                firsts.append(reached[0])
        out.append(
            {"arm": arm, "level": level, "seeds": len(group), "reached": len(firsts),
             "mean_round": sum(firsts) / len(firsts) if firsts else None}
        )  # fmt: skip
    return out


def _interval(mean: float | None, low: float | None, high: float | None) -> str:
    if mean is None:
        return "-"
    if low is None:
        return f"{mean:.3f}"
    return f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


# the per-round table's columns: header -> metric of CURVE_METRICS
ROUND_COLUMNS = {"held-out success": "eval/success/all", "rollout success": "rollout/success_rate"}
ROUND_COLUMNS |= LAST_COLUMNS


def per_round_lines(series: dict[str, dict[str, list[dict[str, Any]]]]) -> list[str]:
    """Markdown rows `| arm | round | ... |`: each curve's mean over seeds at every round any of
    them logged ('-' where a metric has no point at that round)."""
    arms = list(dict.fromkeys(arm for per_arm in series.values() for arm in per_arm))
    if not arms:
        return []
    lines = ["| arm | round | " + " | ".join(ROUND_COLUMNS) + " |",
             "|---|---|" + "---|" * len(ROUND_COLUMNS)]  # fmt: skip
    for arm in arms:
        means = {
            metric: {p["round"]: p["mean"] for p in series.get(metric, {}).get(arm, [])}
            for metric in ROUND_COLUMNS.values()
        }
        for step in sorted({step for points in means.values() for step in points}):
            cells = " | ".join(_number(means[m].get(step)) for m in ROUND_COLUMNS.values())
            lines.append(f"| {arm} | {step} | {cells} |")
    return lines


def markdown_table(
    table: Sequence[dict[str, Any]],
    paired: Sequence[dict[str, Any]],
    reached: Sequence[dict[str, Any]],
    *,
    title: str,
    series: dict[str, dict[str, list[dict[str, Any]]]] | None = None,
) -> str:
    """The replicate's tables as Markdown: final success per arm, the per-round columns of the
    last round, paired differences against GRPO, rounds to reach the success level, and with
    `series` (curves()) every round's means."""
    extra = list(LAST_COLUMNS)
    lines = [
        f"### {title}",
        "",
        "| arm | seeds | start success | final success | change | " + " | ".join(extra) + " |",
        "|---|---|---|---|---|" + "---|" * len(extra),
    ]
    for r in table:
        cells = " | ".join(_number(r.get(c)) for c in extra)
        lines.append(
            f"| {r['name']} (`{r['arm']}`) | {r['seeds']} "
            f"| {_interval(r['start'], r['start_low'], r['start_high'])} "
            f"| {_interval(r['final'], r['final_low'], r['final_high'])} "
            f"| {_interval(r['change'], r['change_low'], r['change_high'])} | {cells} |"
        )
    if paired:
        lines += ["", "| comparison (final success, paired by seed) | seeds | difference |",
                  "|---|---|---|"]  # fmt: skip
        for d in paired:
            lines.append(
                f"| {d['comparison']} | {d['seeds']} "
                f"| {_interval(d['difference'], d['low'], d['high'])} |"
            )
    if reached:
        level = reached[0]["level"]
        lines += ["", f"| arm | seeds reaching held-out success {level:g} | mean round |",
                  "|---|---|---|"]  # fmt: skip
        for d in reached:
            reached_text = f"{d['reached']}/{d['seeds']}"
            lines.append(f"| {d['arm']} | {reached_text} | {_number(d['mean_round'])} |")
    rounds = per_round_lines(series or {})
    if rounds:
        lines += ["", "Per round (mean over seeds; the band is in replicate.json and curves.png):",
                  "", *rounds]  # fmt: skip
    lines += [
        "",
        "Means over seeds with Student-t 95% intervals (none for one seed); success is held-out, "
        "on the same games with the same decoding and seeds for every run (the run's eval "
        "config). The other columns are the last round's: the share of held-out actions the "
        "environment refused, the share of groups whose scores "
        "were all equal, invalid-action penalties included (no GRPO signal), and of groups whose "
        "outcomes were (all won or all lost: no signal from the outcome, only from penalties), "
        "the gate's mean and share > 0.5, and the teacher - "
        "student gap on decisive tokens (naming an object or receptacle) of won and lost "
        "episodes, with the share of lost episodes holding a decisive token the teacher "
        "endorses by >= 1 nat; '-' where the arm has no teacher.",
    ]
    return "\n".join(lines) + "\n"
