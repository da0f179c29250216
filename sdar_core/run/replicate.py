"""`sdar replicate`: a seeded replication of SDAR against its baselines through the real pipeline.

What it runs, all under kfp.local with one MLflow store (`out_dir/mlflow.db`):
1. one warm-start run (`vanilla`, R = 0, warm start on): the skill index, the supervised warm
   start and the evaluation of its checkpoint; that checkpoint is the common start of every
   training run, so all algorithms and seeds begin from the same weights and are evaluated on the
   same held-out games;
2. for each seed and algorithm, one pipeline run of R rounds from that checkpoint (its KL
   reference too), with the seed of the rollouts and the update set to the seed (the games and
   the evaluation set stay fixed: `RunConfig.with_seed`).

The seeds therefore vary the RL part only (sampling, shuffling), not the warm start: the spread
between seeds is the spread of RL from one start. What it writes into `out_dir/replicate/`:
`replicate.md` (the table), `replicate.json` (every number), the comparison plots of
`sdar compare`, and one MLflow "comparison" run holding them. Nothing is tuned on the
evaluation games: the settings are fixed before the first run, and the table reports whatever
the runs give.

The table: per algorithm, start and final held-out success (mean over seeds with a Student-t 95%
interval), the change from the start, the last round's gate statistics and the teacher - student
gap on the tokens of won and of lost episodes; then each algorithm minus GRPO, paired by seed
(mean difference of final success with its t-interval).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdar_core.errors import ArtifactError, ConfigError
from sdar_core.outputs import write_text_atomic
from sdar_core.run.config import RunConfig
from sdar_core.tracking.plots import mean_interval

__all__ = ["DEFAULT_ALGORITHMS", "ReplicateResult", "replicate"]

DEFAULT_ALGORITHMS = ("grpo", "opsd", "sdar")
BASELINE = "grpo"
# teacher-stage metrics of the last round shown in the table (teacher_gap_<won|lost>_<stat>)
GAP_COLUMNS = tuple(
    f"teacher/teacher_gap_{outcome}_{stat}"
    for outcome in ("won", "lost")
    for stat in ("mean", "p10", "p50", "p90")
)
GATE_COLUMNS = ("update/sdar/gate_mean", "update/sdar/gate_active_ratio")


@dataclass(frozen=True)
class RunOutcome:
    algorithm: str
    seed: int
    run_id: str
    start: float
    final: float
    seconds: float
    last: dict[str, float] = field(default_factory=dict)  # last-round metrics of GAP/GATE_COLUMNS


@dataclass(frozen=True)
class ReplicateResult:
    rows: list[dict[str, Any]]
    differences: list[dict[str, Any]]
    runs: list[RunOutcome]
    warm_start_run_id: str
    comparison_run_id: str | None
    out_dir: Path
    files: list[Path]
    seconds: dict[str, float]


def _checkpoint_of(config: RunConfig, run_name: str) -> Path:
    """The warm start's checkpoint folder in the pipeline root: kfp.local names a run's folder
    by pipeline and start time, and a resumed run reuses the folder of the run that made it, so
    this is the newest warm-start checkpoint there (replicate's own out_dir holds no other)."""
    root = config.out_dir.resolve() / "pipeline_root"
    found = [p.parent for p in root.glob("*/warmstart-sft/checkpoint/config.json")]
    if not found:
        raise ArtifactError(
            f"the warm-start run {run_name} left no checkpoint under {root}/*/warmstart-sft: "
            "re-run `sdar replicate` (finished stages are reused), or check the run's task log"
        )
    return max(found, key=lambda p: (p / "config.json").stat().st_mtime)


def _last_values(tracking_uri: str, run_id: str) -> dict[str, float]:
    from sdar_core.tracking.store import client

    logged = client(tracking_uri).get_run(run_id).data.metrics
    return {k: float(logged[k]) for k in (*GAP_COLUMNS, *GATE_COLUMNS) if k in logged}


def _rows(runs: Sequence[RunOutcome], algorithms: Sequence[str]) -> list[dict[str, Any]]:
    rows = []
    for algo in algorithms:
        group = [r for r in runs if r.algorithm == algo]
        if not group:
            continue
        row: dict[str, Any] = {"algorithm": algo, "seeds": len(group)}
        for name, values in (
            ("start", [r.start for r in group]),
            ("final", [r.final for r in group]),
            ("change", [r.final - r.start for r in group]),
        ):
            mean, low, high = mean_interval(values)
            row[name], row[f"{name}_low"], row[f"{name}_high"] = mean, low, high
        for column in (*GATE_COLUMNS, *GAP_COLUMNS):
            values = [r.last[column] for r in group if column in r.last]
            row[column] = sum(values) / len(values) if values else None
        rows.append(row)
    return rows


def _differences(runs: Sequence[RunOutcome], algorithms: Sequence[str]) -> list[dict[str, Any]]:
    """Each algorithm minus the baseline in final success, paired by seed."""
    base = {r.seed: r.final for r in runs if r.algorithm == BASELINE}
    out = []
    for algo in algorithms:
        if algo == BASELINE:
            continue
        pairs = [r.final - base[r.seed] for r in runs if r.algorithm == algo and r.seed in base]
        if not pairs:
            continue
        mean, low, high = mean_interval(pairs)
        out.append(
            {"comparison": f"{algo} - {BASELINE}", "seeds": len(pairs), "difference": mean,
             "low": low, "high": high}
        )  # fmt: skip
    return out


def _interval(mean: float | None, low: float | None, high: float | None) -> str:
    if mean is None:
        return "-"
    if low is None:
        return f"{mean:.3f}"
    return f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f}" if value < 0 else f"{value:.3f}"


def markdown_table(
    rows: Sequence[dict[str, Any]], differences: Sequence[dict[str, Any]], *, title: str
) -> str:
    """The replicate table as Markdown (module docstring)."""
    lines = [
        f"### {title}",
        "",
        "| algorithm | seeds | start success | final success | change | gate mean | "
        "gate > 0.5 | gap won (mean, p10/p50/p90) | gap lost (mean, p10/p50/p90) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        gaps = []
        for outcome in ("won", "lost"):
            head = f"teacher/teacher_gap_{outcome}"
            if r.get(f"{head}_mean") is None:
                gaps.append("-")
                continue
            quantiles = "/".join(_number(r[f"{head}_{q}"]) for q in ("p10", "p50", "p90"))
            gaps.append(f"{_number(r[f'{head}_mean'])} ({quantiles})")
        lines.append(
            f"| {r['algorithm']} | {r['seeds']} "
            f"| {_interval(r['start'], r['start_low'], r['start_high'])} "
            f"| {_interval(r['final'], r['final_low'], r['final_high'])} "
            f"| {_interval(r['change'], r['change_low'], r['change_high'])} "
            f"| {_number(r.get(GATE_COLUMNS[0]))} | {_number(r.get(GATE_COLUMNS[1]))} "
            f"| {gaps[0]} | {gaps[1]} |"
        )
    if differences:
        lines += ["", "| comparison (final success, paired by seed) | seeds | difference |",
                  "|---|---|---|"]  # fmt: skip
        for d in differences:
            lines.append(
                f"| {d['comparison']} | {d['seeds']} "
                f"| {_interval(d['difference'], d['low'], d['high'])} |"
            )
    lines += [
        "",
        "Means over seeds with Student-t 95% intervals (none for one seed); success is held-out, "
        "on the same games with the same decoding and seeds for every run (the run's eval "
        "config); gate and teacher-gap columns are the last "
        "round's (the gap is teacher - student log-probability per response token, on the "
        "rollouts' won and lost episodes; '-' where the algorithm has no teacher).",
    ]
    return "\n".join(lines) + "\n"


def replicate(
    base: RunConfig,
    *,
    algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
    seeds: Sequence[int] = (0, 1, 2),
    on_run: Callable[[str], None] = print,
) -> ReplicateResult:
    """Run the replication (module docstring) with `base`'s settings; returns the table."""
    from pipelines.local import run_local
    from sdar_core.algos import get_algorithm
    from sdar_core.tracking.compare import compare_runs
    from sdar_core.tracking.store import client

    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be distinct and at least one, got {list(seeds)}")
    for name in algorithms:
        if not get_algorithm(name).trains:
            raise ConfigError(f"{name} does not train: replicate compares training algorithms")
    started = time.perf_counter()
    warm = base.model_copy(update={"algorithm": "vanilla", "rounds": 0, "warm_start": True})
    on_run("warm start: index, supervised warm start, evaluation of its checkpoint")
    warm_result = run_local(RunConfig.model_validate(warm.model_dump()))
    checkpoint = _checkpoint_of(base, warm_result.run_name)
    seconds = {"warm_start": time.perf_counter() - started}
    runs: list[RunOutcome] = []
    for seed in seeds:
        for algo in algorithms:
            on_run(f"{algo}, seed {seed}: {base.rounds} rounds from the warm start")
            t0 = time.perf_counter()
            fields = base.model_dump() | {
                "algorithm": algo, "model": str(checkpoint), "warm_start": False,
            }  # fmt: skip
            config = RunConfig.model_validate(fields).with_seed(seed)
            result = run_local(config)
            learned = result.learning  # a training run evaluates its start and final checkpoints
            if learned is None:
                raise ArtifactError(
                    f"run {result.run_id} holds no start and final evaluation: see its task log "
                    f"{result.log_path}"
                )
            runs.append(
                RunOutcome(
                    algorithm=algo,
                    seed=seed,
                    run_id=result.run_id,
                    start=learned["start"],
                    final=learned["final"],
                    seconds=time.perf_counter() - t0,
                    last=_last_values(result.tracking_uri, result.run_id),
                )
            )
            on_run(
                f"  start {runs[-1].start:.3f} -> final {runs[-1].final:.3f} "
                f"({runs[-1].seconds:.0f} s)"
            )
    seconds["training_runs"] = time.perf_counter() - started - seconds["warm_start"]
    out = base.out_dir.resolve() / "replicate"
    out.mkdir(parents=True, exist_ok=True)
    rows, differences = _rows(runs, algorithms), _differences(runs, algorithms)
    world = base.world if base.env == "alfworld" else base.env
    title = (
        f"{world} world ({base.env} engine), {len(seeds)} seeds, R = {base.rounds}, "
        f"{base.n_valid_games} held-out games"
    )
    files = [
        write_text_atomic(out / "replicate.md", markdown_table(rows, differences, title=title)),
        write_text_atomic(
            out / "replicate.json",
            json.dumps(
                {"rows": rows, "differences": differences, "runs": [r.__dict__ for r in runs],
                 "warm_start_run_id": warm_result.run_id, "seconds": seconds},
                indent=1, default=str,
            ),
        ),
    ]  # fmt: skip
    tracking_uri = warm_result.tracking_uri
    comparison = compare_runs(
        tracking_uri, out / "comparison", run_ids=[r.run_id for r in runs],
        log_to=base.experiment,
    )  # fmt: skip
    if comparison.run_id is not None:
        mlflow_client = client(tracking_uri)
        for path in files:
            mlflow_client.log_artifact(comparison.run_id, str(path), "replicate")
    seconds["total"] = time.perf_counter() - started
    return ReplicateResult(
        rows=rows,
        differences=differences,
        runs=runs,
        warm_start_run_id=warm_result.run_id,
        comparison_run_id=comparison.run_id,
        out_dir=out,
        files=[*files, *comparison.files],
        seconds=seconds,
    )
