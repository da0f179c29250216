"""Where a replicate's wall time goes, by phase, and the warm start's own evaluations.

Each pipeline run reports its stages' wall times as the stages logged them into MLflow
(`<stage>/duration_s`, summed over rounds, for the stages this invocation ran: LocalRunResult's
`stage_seconds`) and the launcher's set-up time; the replicate measures each run's wall time
around the runner. A run's phases are those records grouped (`STAGE_PHASES`), plus what the
records do not cover: `runner overhead` = wall time - set-up - the stages (a task's process
start, imports, artifact copies, kfp.local's bookkeeping). The warm start is one run shared by
every arm; each arm's phases are summed over its seeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["PHASES", "STAGE_PHASES", "phase_lines", "phase_times", "run_phases", "warm_lines"]

# MLflow stage name (the prefix of <stage>/duration_s) -> phase
STAGE_PHASES = {
    "index": "index",
    "sft": "warm start",
    "rollout": "rollouts",
    "teacher": "teacher",
    "update": "update",
    "eval": "evaluation",
    "eval_base": "evaluation",
    "eval_ceiling": "evaluation",
}
# the phases in table order; `total` is the wall time, `runner overhead` what the records miss
PHASES = ("set-up", "index", "warm start", "rollouts", "teacher", "update", "evaluation")
OVERHEAD = "runner overhead"


def run_phases(
    stage_seconds: Mapping[str, float], *, setup_seconds: float, wall_seconds: float
) -> dict[str, float]:
    """{phase: seconds} of one pipeline run, with `runner overhead` and `total` (the wall time).
    A stage that STAGE_PHASES does not know counts as its own phase."""
    phases = dict.fromkeys(PHASES, 0.0)
    phases["set-up"] = float(setup_seconds)
    for stage, seconds in stage_seconds.items():
        phase = STAGE_PHASES.get(stage, stage)
        phases[phase] = phases.get(phase, 0.0) + float(seconds)
    phases[OVERHEAD] = wall_seconds - sum(phases.values())
    phases["total"] = float(wall_seconds)
    return phases


def _sum(parts: Sequence[Mapping[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in parts:
        for phase, seconds in part.items():
            out[phase] = out.get(phase, 0.0) + seconds
    return out


def phase_times(
    warm: Mapping[str, float], runs: Sequence[Any], arms: Sequence[str]
) -> dict[str, Any]:
    """{"warm_start": its phases, "arms": {arm: phases summed over its seeds}, "all": the sum of
    everything}: `runs` are RunOutcomes whose `phases` come from run_phases."""
    per_arm = {arm: _sum([r.phases for r in runs if r.arm == arm]) for arm in arms}
    per_arm = {arm: phases for arm, phases in per_arm.items() if phases}
    return {
        "warm_start": dict(warm),
        "arms": per_arm,
        "all": _sum([warm, *per_arm.values()]),
    }


def phase_lines(times: Mapping[str, Any], seeds: Mapping[str, int]) -> list[str]:
    """Markdown: one row per part (the warm start, each arm summed over its `seeds[arm]` seeds,
    everything), one column per phase, seconds."""
    extra = sorted(set(times["all"]) - {*PHASES, OVERHEAD, "total"})  # stages not in the map
    columns = [*PHASES, *extra, OVERHEAD, "total"]
    lines = [
        "| wall time (s) | " + " | ".join(columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    parts = [("warm start (shared)", times["warm_start"])]
    parts += [(f"{arm} ({seeds.get(arm, 0)} seeds)", p) for arm, p in times["arms"].items()]
    parts.append(("all", times["all"]))
    for name, phases in parts:
        cells = " | ".join(f"{phases.get(c, 0.0):.0f}" for c in columns)
        lines.append(f"| {name} | {cells} |")
    return lines


def warm_lines(warm: Mapping[str, Any]) -> list[str]:
    """The warm start's held-out success, and with the skills in its prompt (the teacher's
    ceiling) where the warm-start run evaluated it."""
    start, ceiling = warm.get("success"), warm.get("ceiling")
    if start is None:
        return []
    text = f"Warm start (the start of every run): held-out success {start:.3f}"
    if ceiling is not None:
        text += f"; start, skills in prompt (teacher's ceiling): {ceiling:.3f}"
    return [text + "."]
