"""The success table of a pipeline run (start vs final checkpoint, per task type), and the
evaluation artifacts logged into its MLflow run (`eval/<label>.json` and PNG plots).

The table is built from the evaluation JSONs stored in the MLflow run, so it reads the same
whether the pipeline ran embedded or on a cluster.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sdar_core.tracking.store import RunStore

__all__ = [
    "ceiling_line",
    "learning_line",
    "learning_summary",
    "load_evaluations",
    "log_evaluation_artifacts",
    "paired_outcomes",
    "success_table",
    "valid_action_rows",
]

EVAL_DIR = "eval"


def log_evaluation_artifacts(tracker: Any, results_path: str | Path, *, label: str) -> None:
    """Log the evaluation JSON as eval/<label>.json, a per-task-type bar plot (with the start
    checkpoint's bars when it is already in the run) and the run's per-round histories."""
    from sdar_core.tracking.plots import plot_task_type_success

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        copy = folder / f"{label}.json"
        copy.write_text(Path(results_path).read_text())
        tracker.log_artifact(copy, EVAL_DIR)
        evaluations = load_evaluations(tracker.store, tracker.run_id)
        columns = {name: _by_task_type(results) for name, results in evaluations.items()}
        plot = plot_task_type_success(
            columns, folder / "success_by_task_type.png", title="success by task type"
        )
        tracker.log_artifact(plot, EVAL_DIR)
        history = _history_plot(tracker.store, tracker.run_id, folder)
        if history is not None:
            tracker.log_artifact(history, EVAL_DIR)


def _by_task_type(results: dict[str, Any]) -> dict[str, float]:
    metrics = results["metrics"]
    return {
        name.removeprefix("success/"): value
        for name, value in metrics.items()
        if name.startswith("success/") and "_" not in name.removeprefix("success/")
    }


# history panel -> {line label: metric}; "eval/success/<type>" and "update/*loss" are added per run
HISTORY_PANELS: dict[str, dict[str, str]] = {
    "success": {
        "rollouts": "rollout/success_rate",
        "evaluation": "eval/success/all",
        "base model (before the warm start)": "eval_base/success/all",
        "start, skills in prompt (ceiling)": "eval_ceiling/success/all",
    },
    "evaluation success by task type": {},
    "gate (update)": {
        "gate mean": "update/sdar/gate_mean",
        "fraction gate > 0.5": "update/sdar/gate_active_ratio",
    },
    "teacher - student gap": {
        "teacher stage": "teacher/teacher_mean_gap",
        "update": "update/teacher_gap",
    },
    "losses (update)": {},
}


def history_panels(metric_names: list[str]) -> dict[str, dict[str, str]]:
    """HISTORY_PANELS with the run's own task types and loss terms filled in."""
    panels = {name: dict(lines) for name, lines in HISTORY_PANELS.items()}
    for name in sorted(metric_names):
        rest = name.removeprefix("eval/success/")
        if name.startswith("eval/success/") and rest != "all" and "_" not in rest:
            panels["evaluation success by task type"][rest] = name
        if name.startswith("update/") and name.endswith("loss"):
            panels["losses (update)"][name.removeprefix("update/")] = name
    return panels


def _history_plot(store: RunStore, run_id: str, folder: Path) -> Path | None:
    """Per round: success (rollouts, evaluation, per task type), gate statistics, the teacher-
    student gap and the loss terms, one panel each."""
    from sdar_core.tracking.plots import plot_groups

    logged = set(store.metric_names(run_id))
    panels = {}
    for panel, lines in history_panels(sorted(logged)).items():
        groups = {}
        for label, name in lines.items():
            if name in logged:
                points = store.metric_history(run_id, name)
                groups[label] = {step: [value] for step, value in points}
        panels[panel] = groups
    return plot_groups(panels, folder / "history.png", title="per round")


def load_evaluations(store: RunStore, run_id: str) -> dict[str, dict[str, Any]]:
    """{label: evaluation JSON} of the run's eval/*.json artifacts, start first."""
    found = {}
    for name in store.list_artifacts(run_id, EVAL_DIR):
        if name.endswith(".json"):
            found[Path(name).stem] = json.loads(store.read_text(run_id, name))
    return dict(sorted(found.items(), key=lambda item: _evaluation_order(item[0])))


def _evaluation_order(label: str) -> tuple[int, int, str]:
    """base, start, ceiling, round-1, round-2, ..., final, then any other label by name."""
    order = {"base": 0, "start": 1, "ceiling": 2}
    if label in order:
        return order[label], 0, label
    number = label.removeprefix("round-")
    if number.isdigit():
        return 3, int(number), label
    return (4, 0, label) if label == "final" else (5, 0, label)


def success_table(
    store: RunStore, run_id: str, evaluations: dict[str, dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Rows {task_type, <label>: success, ...} for each task type and `all` (from
    `evaluations` when the caller has already loaded them)."""
    if evaluations is None:
        evaluations = load_evaluations(store, run_id)
    evaluations = {k: _by_task_type(v) for k, v in evaluations.items()}
    task_types = sorted({t for cols in evaluations.values() for t in cols} - {"all"})
    rows = []
    for task_type in [*task_types, "all"]:
        row: dict[str, Any] = {"task_type": task_type}
        for label, columns in evaluations.items():
            row[label] = columns.get(task_type)
        rows.append(row)
    return rows


def valid_action_rows(evaluations: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per evaluation (base, start, final, then the others such as the Skill-Prompt
    ceiling): the share of its actions the env accepted (1 - invalid_action_rate), the counts
    and a Wilson 95% interval, which is rough: one episode's actions are not independent."""
    from sdar_core.evaluation.metrics import wilson_interval

    rows = []
    for label, results in evaluations.items():
        episodes = results["episodes"]
        actions = sum(int(e["steps"]) for e in episodes)
        valid = actions - sum(int(e["invalid_actions"]) for e in episodes)
        low, high = wilson_interval(valid, actions)
        rows.append(
            {
                "evaluation": label,
                "valid_actions": valid / actions if actions else None,
                "low": low,
                "high": high,
                "valid/actions": f"{valid}/{actions}",
            }
        )
    return rows


def paired_outcomes(before: dict[str, Any], after: dict[str, Any]) -> tuple[list[bool], list[bool]]:
    """The won flags of the episodes both evaluations played (same task and run), in one order:
    (after, before). An evaluation pair that shares no episode is refused."""

    def key(e: dict[str, Any]) -> tuple[str, int]:
        return str(e["task_id"]), int(e.get("run", 0))

    start = {key(e): bool(e["won"]) for e in before["episodes"]}
    final = {key(e): bool(e["won"]) for e in after["episodes"]}
    shared = sorted(start.keys() & final.keys())
    if not shared:
        raise ValueError(
            "the two evaluations share no episode (task and run): evaluate both checkpoints on "
            "the same games with the same settings"
        )
    return [final[k] for k in shared], [start[k] for k in shared]


def learning_summary(
    evaluations: dict[str, dict[str, Any]], *, since: str = "start"
) -> dict[str, Any] | None:
    """Held-out success of checkpoint `since` ("base": the model before the warm start,
    "start": the checkpoint the rounds began from) and of the final one on the same episodes,
    their difference and its paired 95% interval (Newcombe); None without both evaluations."""
    from sdar_core.evaluation.metrics import paired_difference_interval

    if since not in evaluations or "final" not in evaluations:
        return None
    after, before = paired_outcomes(evaluations[since], evaluations["final"])
    diff, low, high = paired_difference_interval(after, before)
    return {
        "since": since,
        "episodes": float(len(after)),
        "start": sum(before) / len(before),
        "final": sum(after) / len(after),
        "difference": diff,
        "low": low,
        "high": high,
    }


def ceiling_line(evaluations: dict[str, dict[str, Any]]) -> str | None:
    """One sentence: held-out success of the start checkpoint with the skills in its prompt (the
    teacher's ceiling) next to its success without them; None without both evaluations."""
    if "ceiling" not in evaluations or "start" not in evaluations:
        return None
    ceiling = evaluations["ceiling"]["metrics"]["success/all"]
    start = evaluations["start"]["metrics"]["success/all"]
    return (
        f"start, skills in prompt (teacher's ceiling): held-out success {ceiling:.3f} "
        f"(without skills {start:.3f})"
    )


def learning_line(summary: dict[str, Any]) -> str:
    """One sentence: the change in held-out success and whether its interval excludes 0."""
    what = {"base": "whole run (base model -> final)", "start": "RL rounds (start -> final)"}
    verdict = (
        "the 95% interval excludes 0: the run learned"
        if summary["low"] > 0
        else "the 95% interval excludes 0: the run got worse"
        if summary["high"] < 0
        else "the 95% interval includes 0: no change shown"
    )
    return (
        f"{what.get(summary.get('since', 'start'), 'start -> final')}: held-out success "
        f"{summary['start']:.3f} -> {summary['final']:.3f}, difference "
        f"{summary['difference']:+.3f} [{summary['low']:+.3f}, {summary['high']:+.3f}] (paired "
        f"95% interval over {int(summary['episodes'])} episodes); {verdict}"
    )
