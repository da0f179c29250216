"""`sdar replicate`: a seeded replication of SDAR against its baselines through the real pipeline.

What it runs, all with one MLflow store, through a `runner` (a callable that runs one pipeline
for a RunConfig; the command passes pipelines.local.run_local, tests a fake: sdar_core never
imports pipelines/):
1. one warm-start run (`vanilla`, R = 0, warm start on): the skill index, the supervised warm
   start and the evaluation of its checkpoint; that checkpoint is the common start of every
   training run, so all arms and seeds begin from the same weights and are evaluated on the same
   held-out games;
2. for each seed and arm (sdar_core.run.arms: GRPO, GRPO+OPSD, SDAR, OPSD by default; SDAR at
   other distillation coefficients; SDAR and GRPO+OPSD with a noisy teacher), one pipeline run
   of R rounds from that checkpoint (its KL reference too), with the seeds of the rollouts, the
   update and the teacher's retrieval noise set to the seed (the games and the evaluation set
   stay fixed: `RunConfig.with_seed`), and the base config's `eval_every` (the command's
   default is 1: held-out success after every round, the curves' points).

The warm-start run also evaluates its checkpoint with the retrieved skills in its prompt (the
teacher's ceiling, `RunConfig.ceiling`: by default in the miniature worlds, for arms with a
teacher) once for all arms; the training runs do not repeat it. The wall time is reported by
phase (replicate_phases: set-up, index, warm start, rollouts, teacher, update, evaluation,
runner overhead) for the warm start and per arm, summed over seeds, from the stage durations
each run logged into MLflow.

With `workers` > 1 the training runs go that many at a time (one thread each here, calling the
runner; pipelines.replicate gives each its own process), those with a teacher stage (longer)
started first, finishing in any order but reported in the seed/arm order; the phase rows then
add up each run's own wall time, and the tables say how long the whole replicate took.

The seeds therefore vary the RL part only, not the warm start: the spread between seeds is the
spread of RL from one start. Nothing is tuned on the evaluation games: the settings are fixed
before the first run, and the tables report whatever the runs give.

In MLflow the replicate is one parent run (`replicate`) with the warm-start run and every
arm/seed run as its children (tag `mlflow.parentRunId`, which MLflow's UI nests; each child
also carries its arm in the tag `sdar.arm`, which `sdar compare` groups by). A parent rather than
a separate comparison run, because the children are the evidence of the numbers it holds and
the UI then shows them together; the parent holds the curves as metrics (step = round,
`arms/<metric>/<arm>` for the mean over seeds, `..._low` / `..._high` for the band), the tables
and plots as artifacts (`replicate/`, `comparison/`). Files in `out_dir/replicate/`:
`replicate.md` (tables), `replicate.json` (every number, curves included), `curves.png`, and
the plots of `sdar compare`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sdar_core.errors import ArtifactError, ConfigError
from sdar_core.outputs import write_text_atomic
from sdar_core.run.arms import Arm, arms_for
from sdar_core.run.config import RunConfig
from sdar_core.run.replicate_phases import phase_lines, phase_times, run_phases, warm_lines
from sdar_core.run.replicate_table import (
    CURVE_METRICS,
    RunOutcome,
    curves,
    differences,
    markdown_table,
    metric_key,
    rounds_to_level,
    rows,
)
from sdar_core.tracking.compare import ARM_TAG

__all__ = ["PipelineResult", "ReplicateResult", "replicate", "run_histories"]

PARENT_TAG = "mlflow.parentRunId"  # MLflow's own: its UI nests a run under this parent


class PipelineResult(Protocol):
    """What the replicate needs from one pipeline run (pipelines.local.LocalRunResult)."""

    run_id: str
    run_name: str
    tracking_uri: str
    log_path: Path | None
    learning: dict[str, Any] | None
    setup_seconds: float  # the launcher's set-up (model, games, MLflow store)
    stage_seconds: dict[str, float]  # {stage: seconds} its stages logged (<stage>/duration_s)


Runner = Callable[[RunConfig], PipelineResult]


@dataclass(frozen=True)
class ReplicateResult:
    rows: list[dict[str, Any]]
    differences: list[dict[str, Any]]
    curves: dict[str, Any]
    runs: list[RunOutcome]
    warm_start_run_id: str
    parent_run_id: str
    out_dir: Path
    files: list[Path]
    seconds: dict[str, float]
    phases: dict[str, Any]  # replicate_phases.phase_times
    warm_start: dict[str, Any]  # its run id, held-out success and ceiling (None: not evaluated)


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


def run_histories(store: Any, run_id: str) -> dict[str, dict[int, float]]:
    """{metric: {round: value}} of the run's CURVE_METRICS (eval/...: every evaluated round)."""
    logged = set(store.metric_names(run_id))
    return {
        metric: dict(store.metric_history(run_id, metric))
        for metric in CURVE_METRICS
        if metric in logged
    }


def _start_parent(tracking_uri: str, base: RunConfig, arms: Sequence[Arm], seeds) -> str:
    from sdar_core.tracking.store import prepare_experiment, run_store

    experiment_id = prepare_experiment(tracking_uri, base.experiment)
    tags = {
        "sdar.replicate": "true",
        "sdar.arms": ",".join(a.label for a in arms),
        "sdar.seeds": ",".join(str(s) for s in seeds),
        "mlflow.note.content": "Replicate: every arm and seed is a child run of this one; the "
        "metrics arms/<metric>/<arm> are per-round means over seeds (_low/_high: 95% band).",
    }
    return run_store(tracking_uri).create_run(experiment_id, run_name="replicate", tags=tags)


def _warm_start_figures(store: Any, run_id: str) -> dict[str, Any]:
    """The warm-start run's held-out success at round 0, with and without the skills in the
    prompt (None where it did not evaluate that)."""
    logged = set(store.metric_names(run_id))
    figures: dict[str, Any] = {"run_id": run_id}
    for name, metric in (("success", "eval/success/all"), ("ceiling", "eval_ceiling/success/all")):
        points = dict(store.metric_history(run_id, metric)) if metric in logged else {}
        figures[name] = points.get(0)
    return figures


def _train(
    runner: Runner, base: RunConfig, arm: Arm, seed: int, checkpoint: Path, parent: str,
    clock: Callable[[], float],
) -> RunOutcome:  # fmt: skip
    from sdar_core.tracking.store import run_store

    started = clock()
    result = runner(arm.run_config(base, model=checkpoint, seed=seed))
    seconds = clock() - started
    learned = result.learning  # a training run evaluates its start and final checkpoints
    if learned is None:
        raise ArtifactError(
            f"run {result.run_id} holds no start and final evaluation: see its task log "
            f"{result.log_path}"
        )
    store = run_store(result.tracking_uri)
    store.set_tags(result.run_id, {PARENT_TAG: parent, ARM_TAG: arm.label})
    return RunOutcome(
        arm=arm.label,
        seed=seed,
        run_id=result.run_id,
        start=learned["start"],
        final=learned["final"],
        seconds=seconds,
        histories=run_histories(store, result.run_id),
        phases=run_phases(
            result.stage_seconds, setup_seconds=result.setup_seconds, wall_seconds=seconds
        ),
    )


def replicate(
    base: RunConfig,
    *,
    runner: Runner,
    arms: Sequence[Arm] | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    level: float = 0.8,
    on_run: Callable[[str], None] = print,
    clock: Callable[[], float] = time.perf_counter,
    workers: int = 1,
    warm_runner: Runner | None = None,
) -> ReplicateResult:
    """Run the replication (module docstring) with `base`'s settings; `level` is the held-out
    success whose first round each arm's seeds report; `clock` measures the wall times; with
    `workers` > 1, that many training runs at a time (the runner must allow it: each of its
    calls runs in a thread of its own), in the same order in the tables; `warm_runner` runs the
    warm start, which runs alone (default: `runner`)."""
    arms = list(arms if arms is not None else arms_for())
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be distinct and at least one, got {list(seeds)}")
    if len({a.label for a in arms}) != len(arms) or not arms:
        raise ConfigError(f"arms must be distinct and at least one, got {[a.label for a in arms]}")
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    started = clock()
    # the ceiling (base's setting: by default on for the miniature worlds' teacher presets) is
    # evaluated once, on the warm start; the training runs start from that checkpoint
    warm = base.model_copy(
        update={"algorithm": "vanilla", "rounds": 0, "warm_start": True, "eval_every": None}
    )
    trained = base.model_copy(update={"ceiling": False})
    what = ", its ceiling (skills in prompt)" if base.ceiling else ""
    on_run(f"warm start: index, supervised warm start, evaluation of its checkpoint{what}")
    warm_result = (warm_runner or runner)(RunConfig.model_validate(warm.model_dump()))
    checkpoint = _checkpoint_of(base, warm_result.run_name)
    tracking_uri = warm_result.tracking_uri
    seconds = {"warm_start": clock() - started}
    warm_phases = run_phases(
        warm_result.stage_seconds,
        setup_seconds=warm_result.setup_seconds,
        wall_seconds=seconds["warm_start"],
    )
    parent = _start_parent(tracking_uri, base, arms, seeds)
    try:
        from sdar_core.tracking.store import run_store

        store = run_store(tracking_uri)
        store.set_tags(warm_result.run_id, {PARENT_TAG: parent})
        warm_figures = _warm_start_figures(store, warm_result.run_id)
        jobs = [(seed, arm) for seed in seeds for arm in arms]

        def train(job: tuple[int, Arm]) -> RunOutcome:
            seed, arm = job
            on_run(f"{arm.label}, seed {seed}: {base.rounds} rounds from the warm start")
            done = _train(runner, trained, arm, seed, checkpoint, parent, clock)
            name = f"{arm.label}, seed {seed}: " if workers > 1 else ""  # lines interleave
            on_run(
                f"  {name}start {done.start:.3f} -> final {done.final:.3f} ({done.seconds:.0f} s)"
            )
            return done

        runs = _map(train, jobs, workers, first=[_has_teacher(arm) for _, arm in jobs])
        seconds["training_runs"] = clock() - started - seconds["warm_start"]
        seconds["total"] = seconds["warm_start"] + seconds["training_runs"]  # reports excluded
        seconds["workers"] = workers
        phases = phase_times(warm_phases, runs, [a.label for a in arms])
        result = _report(
            base, arms, seeds, runs, tracking_uri, warm_figures, parent, level, seconds, phases
        )
        store.set_terminated(parent, "FINISHED")
    except BaseException as err:  # the parent ends like a pipeline run: stopped or failed
        from sdar_core.tracking.store import finish_run

        stopped = isinstance(err, KeyboardInterrupt | SystemExit)
        finish_run(tracking_uri, parent, status="KILLED" if stopped else "FAILED")
        raise
    return result


def _has_teacher(arm: Arm) -> bool:
    from sdar_core.algos import get_algorithm

    return get_algorithm(arm.algorithm).needs_teacher


def _map(
    function: Callable[[Any], RunOutcome], jobs: list, workers: int, *, first: Sequence[bool]
) -> list[RunOutcome]:
    """`function` over `jobs`, `workers` at a time, the results in the jobs' order. With
    several workers the jobs marked `first` (the longer ones: runs with a teacher stage) start
    before the others, so that the last to finish are short and the workers end close together
    (with a worker idle while the other runs a long last job, the wall time grows by up to one
    run). A failure (or Ctrl-C) cancels the jobs not yet started and raises at once; the runner
    stops those under way (it is the one that started their processes)."""
    if workers == 1:
        return [function(job) for job in jobs]
    order = sorted(range(len(jobs)), key=lambda k: not first[k])  # stable: in order otherwise
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="replicate-run")
    try:
        futures = {k: pool.submit(function, jobs[k]) for k in order}
        return [futures[k].result() for k in range(len(jobs))]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _report(
    base: RunConfig, arms: Sequence[Arm], seeds, runs, tracking_uri: str, warm: dict[str, Any],
    parent: str, level: float, seconds: dict[str, float], phases: dict[str, Any],
) -> ReplicateResult:  # fmt: skip
    """Write the tables, curves and plots; log them (and the curves as metrics) to the parent."""
    from sdar_core.tracking.compare import compare_runs
    from sdar_core.tracking.plots import plot_groups

    labels = [a.label for a in arms]
    display = {a.label: a.display for a in arms}
    out = base.out_dir.resolve() / "replicate"
    out.mkdir(parents=True, exist_ok=True)
    table, paired = rows(runs, labels, display), differences(runs, labels)
    reached, series = rounds_to_level(runs, labels, level=level), curves(runs, labels)
    world = base.world if base.env == "alfworld" else base.env
    title = (
        f"{world} world ({base.env} engine), {len(seeds)} seeds, R = {base.rounds}, "
        f"{base.n_valid_games} held-out games"
    )
    dump = {
        "rows": table, "differences": paired, "rounds_to_level": reached, "curves": series,
        "runs": [r.__dict__ for r in runs], "warm_start_run_id": warm["run_id"],
        "warm_start": warm, "parent_run_id": parent, "seconds": seconds, "phases": phases,
        "arms": {a.label: {"algorithm": a.algorithm, "display": a.display,
                           "distill_coef": a.distill_coef, "skill_noise": a.skill_noise}
                 for a in arms},
    }  # fmt: skip
    seed_counts = {arm: sum(r.arm == arm for r in runs) for arm in labels}
    text = markdown_table(table, paired, reached, title=title, series=series)
    text += "\n".join(["", *warm_lines(warm), "", *phase_lines(phases, seed_counts), ""])
    if seconds.get("workers", 1) > 1:  # the rows add up each run's own wall time
        text += (
            f"\nThe training runs went {seconds['workers']:.0f} at a time: each row sums its runs' "
            f"own wall times; the replicate took {seconds['total']:.0f} s of wall time in all "
            f"(warm start {seconds['warm_start']:.0f} s, training runs "
            f"{seconds['training_runs']:.0f} s).\n"
        )
    files = [
        write_text_atomic(out / "replicate.md", text),
        write_text_atomic(out / "replicate.json", json.dumps(dump, indent=1, default=str)),
    ]
    panels = {
        metric: {arm: {p["round"]: [r.histories[metric][p["round"]] for r in runs
                                    if r.arm == arm and p["round"] in r.histories.get(metric, {})]
                       for p in points}
                 for arm, points in per_arm.items()}
        for metric, per_arm in series.items()
    }  # fmt: skip
    figure = plot_groups(panels, out / "curves.png", title=f"per round, mean over seeds: {title}")
    if figure is not None:
        files.append(figure)
    _log_curves(tracking_uri, parent, series)
    comparison = compare_runs(
        tracking_uri, out / "comparison", run_ids=[r.run_id for r in runs], into_run=parent
    )
    from sdar_core.tracking.store import run_store

    store = run_store(tracking_uri)
    for path in files:
        store.log_artifact(parent, path, "replicate")
    return ReplicateResult(
        rows=table, differences=paired, curves=series, runs=runs,
        warm_start_run_id=warm["run_id"], parent_run_id=parent, out_dir=out,
        files=[*files, *comparison.files], seconds=seconds, phases=phases, warm_start=warm,
    )  # fmt: skip


def _log_curves(tracking_uri: str, parent: str, series: dict[str, Any]) -> None:
    """Each curve point as metrics of the parent run at step = round."""
    from sdar_core.tracking.store import run_store

    store = run_store(tracking_uri)
    stamp = int(time.time() * 1000)
    by_round: dict[int, dict[str, float]] = {}
    for metric, per_arm in series.items():
        for arm, points in per_arm.items():
            key = f"arms/{metric}/{metric_key(arm)}"
            for p in points:
                values = by_round.setdefault(p["round"], {})
                values[key] = p["mean"]
                if p["low"] is not None:
                    values[f"{key}_low"], values[f"{key}_high"] = p["low"], p["high"]
    for step, values in sorted(by_round.items()):
        store.log_metrics(parent, values, step=step, timestamp_ms=stamp)
