"""`compare_runs`: the MLflow run comparison behind `sdar compare`.

Input: run ids, or an experiment name (every pipeline run in it). Only runs that FINISHED are
compared unless `include_unfinished`: a run that was killed, failed or is still going (or died by
SIGKILL, which leaves it RUNNING) is not another seed; the ids left out are reported. Each run
is described by its arm (the `sdar.arm` tag that `sdar replicate` sets, e.g. `sdar@0.1`; else its
`algorithm` param), its `seed` param and its metric histories (step = round). Runs of the same
arm are seeds of one group: per round, the group's value is the mean over
seeds with a Student-t 95% interval (none with a single seed).

A seed counts once. Two compared runs of one algorithm with the same seed (a `--no-resume`
re-run, two runs that raced on one out-dir before runs took a lock) are one seed measured twice,
not two seeds: counting both would narrow the interval with a repeat. The latest run of each
(algorithm, seed) is kept (a FINISHED one before any other under `include_unfinished`) and each
run set aside is reported in one line naming the run kept (`ComparisonResult.duplicates`); to
compare a different one, pass the run ids to compare.

Output, written atomically into `out_dir` and logged as artifacts of a new "comparison" run in
the experiment (or, with `into_run`, of that existing run: the replicate's parent run):
`comparison.csv`, `comparison.md`, `success_per_round.png` and
`gate_statistics.png` (the latter only when some run has gate metrics).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdar_core.errors import ConfigError
from sdar_core.outputs import write_text_atomic
from sdar_core.tracking.plots import mean_interval, plot_groups
from sdar_core.tracking.store import client, prepare_experiment

__all__ = [
    "ComparisonResult",
    "RunRecord",
    "compare_runs",
    "group_table",
    "load_runs",
    "one_run_per_seed",
]

SUCCESS_METRICS = ("rollout/success_rate", "eval/success/all")
ARM_TAG = "sdar.arm"  # set by `sdar replicate`: the arm a run belongs to (sdar_core.run.arms)
GATE_METRICS = ("update/sdar/gate_mean", "update/sdar/gate_active_ratio", "update/teacher_gap")
COLUMNS = (
    "algorithm",
    "seeds",
    "start_success",
    "final_success",
    "final_success_ci95",
    "last_rollout_success",
    "last_gate_mean",
    "last_gate_active_ratio",
    "runs",
)


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    algorithm: str
    seed: str
    histories: dict[str, dict[int, float]]
    status: str = "FINISHED"  # MLflow's: FINISHED, RUNNING, FAILED, KILLED
    start_time: int = 0  # ms since the epoch (MLflow's)


@dataclass(frozen=True)
class ComparisonResult:
    rows: list[dict[str, Any]]
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    run_id: str | None = None
    left_out: list[str] = field(default_factory=list)  # unfinished runs not compared
    duplicates: list[str] = field(default_factory=list)  # one line per repeated seed set aside


def load_runs(
    tracking_uri: str, *, run_ids: Sequence[str] = (), experiment: str | None = None
) -> list[RunRecord]:
    """The runs to compare, with their histories of the metrics compared here."""
    mlflow_client = client(tracking_uri)
    if bool(run_ids) == (experiment is not None):
        raise ConfigError("pass run ids or an experiment name (exactly one of the two)")
    if experiment is not None:
        found = mlflow_client.get_experiment_by_name(experiment)
        if found is None:
            raise ConfigError(f"no MLflow experiment named {experiment!r} at {tracking_uri}")
        runs = mlflow_client.search_runs(
            [found.experiment_id], filter_string="tags.`sdar.pipeline_run` = 'true'"
        )
    else:
        runs = [mlflow_client.get_run(run_id) for run_id in run_ids]
    if not runs:
        raise ConfigError(f"experiment {experiment!r} holds no pipeline runs: run `sdar run` first")
    records = []
    for run in runs:
        histories = {}
        for name in (*SUCCESS_METRICS, *GATE_METRICS):
            if name in run.data.metrics:
                points = mlflow_client.get_metric_history(run.info.run_id, name)
                histories[name] = {int(p.step): float(p.value) for p in points}
        params = run.data.params
        records.append(
            RunRecord(
                run.info.run_id,
                run.data.tags.get(ARM_TAG) or params.get("algorithm", "?"),
                params.get("seed", "?"),
                histories,
                status=run.info.status,
                start_time=int(run.info.start_time or 0),
            )
        )
    return records


def one_run_per_seed(records: Sequence[RunRecord]) -> tuple[list[RunRecord], list[str]]:
    """The latest run of each (algorithm, seed), FINISHED ones first, in the given order; and
    one line per run set aside (module docstring)."""
    kept: dict[tuple[str, str], RunRecord] = {}
    for record in records:
        key = (record.algorithm, record.seed)
        rank = (record.status == "FINISHED", record.start_time, record.run_id)
        held = kept.get(key)
        if held is None or rank > (held.status == "FINISHED", held.start_time, held.run_id):
            kept[key] = record
    chosen = {id(r) for r in kept.values()}
    lines = [
        f"run {r.run_id} ({r.algorithm}, seed {r.seed}) set aside: run "
        f"{kept[(r.algorithm, r.seed)].run_id} is a later run of the same algorithm and seed"
        for r in records
        if id(r) not in chosen
    ]
    return [r for r in records if id(r) in chosen], lines


def _groups(records: Sequence[RunRecord], metric: str) -> dict[str, dict[int, list[float]]]:
    groups: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        for step, value in record.histories.get(metric, {}).items():
            groups[record.algorithm][step].append(value)
    return {k: dict(v) for k, v in groups.items()}


def _at(records: Sequence[RunRecord], metric: str, pick) -> list[float]:
    values = []
    for record in records:
        history = record.histories.get(metric)
        if history:
            values.append(history[pick(history)])
    return values


def group_table(records: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """One row per algorithm: start/final evaluation success (mean, 95% interval) and more."""
    by_algo: dict[str, list[RunRecord]] = defaultdict(list)
    for record in records:
        by_algo[record.algorithm].append(record)
    rows = []
    for algo, group in sorted(by_algo.items()):
        final = _at(group, "eval/success/all", max)
        row: dict[str, Any] = {c: None for c in COLUMNS}
        row |= {"algorithm": algo, "seeds": len(group), "runs": " ".join(r.run_id for r in group)}
        if final:
            mean, low, high = mean_interval(final)
            row["final_success"] = mean
            row["final_success_ci95"] = None if low is None else f"[{low:.3f}, {high:.3f}]"
        for column, metric in (
            ("start_success", "eval/success/all"),
            ("last_rollout_success", "rollout/success_rate"),
            ("last_gate_mean", "update/sdar/gate_mean"),
            ("last_gate_active_ratio", "update/sdar/gate_active_ratio"),
        ):
            values = _at(group, metric, min if column == "start_success" else max)
            row[column] = sum(values) / len(values) if values else None
        rows.append(row)
    return rows


def _csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell(row[c]) for c in COLUMNS) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def compare_runs(
    tracking_uri: str,
    out_dir: str | Path,
    *,
    run_ids: Sequence[str] = (),
    experiment: str | None = None,
    log_to: str | None = None,
    include_unfinished: bool = False,
    into_run: str | None = None,
) -> ComparisonResult:
    """Compare runs (module docstring) and log the outputs to a new run in experiment `log_to`
    (default: the compared experiment, or that of the first run given), or into the existing
    run `into_run`."""
    loaded = load_runs(tracking_uri, run_ids=run_ids, experiment=experiment)
    included = [r for r in loaded if include_unfinished or r.status == "FINISHED"]
    left_out = [f"{r.run_id} ({r.status})" for r in loaded if r not in included]
    records, duplicates = one_run_per_seed(included)
    if not included:
        raise ConfigError(
            f"none of the {len(loaded)} runs finished ({', '.join(left_out)}): resume them with "
            "`sdar run` and the same settings, or pass --include-unfinished"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = group_table(records)
    files = [
        write_text_atomic(out / "comparison.csv", _csv(rows)),
        write_text_atomic(out / "comparison.md", _markdown(rows)),
    ]
    for name, metrics, title in (
        ("success_per_round.png", SUCCESS_METRICS, "success per round"),
        ("gate_statistics.png", GATE_METRICS, "gate statistics"),
    ):
        panels = {m: _groups(records, m) for m in metrics}
        figure = plot_groups(panels, out / name, title=title)
        if figure is not None:
            files.append(figure)
    if into_run is not None:
        mlflow_client = client(tracking_uri)
        for path in files:
            mlflow_client.log_artifact(into_run, str(path), "comparison")
        run_id: str | None = into_run
    else:
        target = log_to or experiment or _experiment_of(tracking_uri, records[0].run_id)
        run_id = None if target is None else _log(tracking_uri, target, records, files)
    return ComparisonResult(
        rows=rows, out_dir=out, files=files, run_id=run_id, left_out=left_out,
        duplicates=duplicates,
    )  # fmt: skip


def _experiment_of(tracking_uri: str, run_id: str) -> str:
    mlflow_client = client(tracking_uri)
    experiment_id = mlflow_client.get_run(run_id).info.experiment_id
    return mlflow_client.get_experiment(experiment_id).name


def _log(tracking_uri: str, experiment: str, records, files: list[Path]) -> str:
    mlflow_client = client(tracking_uri)
    experiment_id = prepare_experiment(tracking_uri, experiment)
    compared = ",".join(r.run_id for r in records)
    run = mlflow_client.create_run(
        experiment_id, run_name="comparison", tags={"sdar.comparison_of": compared[:5000]}
    )
    for path in files:
        mlflow_client.log_artifact(run.info.run_id, str(path), "comparison")
    mlflow_client.set_terminated(run.info.run_id)
    return run.info.run_id
