"""The embedded run: the whole pipeline under kfp.local, on this machine, with no Docker and no
Kubernetes (`make run`, `sdar run`).

Set-up happens here in the parent process (tiny model, games, MLflow store and experiment;
sdar_core.run.prepare), then `kfp.local.init(SubprocessRunner(use_venv=False))` runs each task as
a subprocess of this Python, which has sdar_core and kfp installed (DESIGN.md §4); with
`RunConfig.warm_tasks` (the default) that subprocess is forked from a server that imported torch,
transformers and sdar_core once (pipelines/warm_tasks.py), not started fresh. The "local"
profile is compiled (resources, images, secrets and PVCs are ignored by kfp.local anyway).
While it runs, the terminal shows one line per stage and a progress bar; everything kfp.local
prints goes to `<out_dir>/logs/<run name>.log` (sdar_core.tracking.console).
Afterwards the MLflow run is marked FINISHED, and the success table is read back from the
evaluation artifacts in the run. A run that fails ends FAILED, one stopped by SIGTERM / SIGINT
ends KILLED (sdar_core.run.interrupt). A stage that fails on bad input ends the run at once with
its one-line error, `StageFailed`, without the retries meant for flaky failures
(pipelines/task_failures.py).

One run at a time per out-dir: `run_local` holds `<out_dir>/sdar.lock` (sdar_core.run.lock).

Resuming: the pipeline root is `<out_dir>/pipeline_root` and kfp.local's cache is on (its entries
under `pipeline_root/.kfp_cache`), so a task whose inputs are unchanged and whose outputs are
still on disk is reused instead of run. The run name is `<pipeline>-<key>-<time>`, where the key
is a digest of everything the pipeline receives; with `resume` (the default) a run whose name
carries the same key is looked up in the experiment and its name reused, so `start_tracking`
hits the cache, returns that MLflow run, and every finished stage after it is reused too: a
re-run after a kill redoes only the unfinished stages, into the same MLflow run. Before a cached
task is reused its outputs are checked against their checksums, and a damaged one runs again;
the folders that killed attempts left half written are removed first (pipelines/cache.py).
`resume=False` (`sdar run --no-resume`) starts a new MLflow run in which every stage runs.
`LocalRunResult.executed` lists the tasks that ran (the others came from the cache).
An evaluation that an earlier run in the out-dir already computed on the same inputs (the start
checkpoint that the runs of a replicate share) is reused from `<out_dir>/eval_memo`
(sdar_core/evaluation/memo.py; the environment's `SDAR_EVAL_MEMO` wins, empty turns it off);
`resume=False` recomputes it too.

Chaining (`sdar run --rounds-per-run K`, RunConfig.rounds_per_run): the rounds run as the chunks a
cluster run is compiled into (pipelines/sdar_pipeline.py: chained runs), one kfp.local pipeline
run after another, each later one from the previous one's final checkpoint output, all into one
MLflow run whose chain id is the run name. The run key covers K, so a chain never resumes a
run of one pipeline (or the reverse); resuming a chain reuses every finished task of every
chunk, as for one pipeline.
"""

import contextlib
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.cache import remove_unfinished, task_labels, verified_cache
from pipelines.options import eval_rounds
from pipelines.sdar_pipeline import (
    PipelineOptions,
    build_pipeline,
    split_run,
    used_stage_configs,
)
from pipelines.task_failures import StageFailed, stopping_at_failures
from pipelines.warm_tasks import warm_tasks
from sdar_core.run import RunConfig, prepare_inputs, stage_config_json, success_table
from sdar_core.run.identity import input_identity
from sdar_core.run.interrupt import closing_mlflow_run
from sdar_core.run.lock import out_dir_lock
from sdar_core.run.report import (
    ceiling_line,
    learning_summary,
    load_evaluations,
    valid_action_rows,
)
from sdar_core.tracking.console import ConsoleFilter

__all__ = ["LocalRunResult", "run_local"]


@dataclass(frozen=True)
class LocalRunResult:
    run_id: str
    tracking_uri: str
    rows: list[dict[str, Any]]
    setup_seconds: float
    pipeline_seconds: float
    stage_seconds: dict[str, float] = field(default_factory=dict)
    n_tasks: int = 0
    run_name: str = ""
    executed: tuple[str, ...] = ()  # tasks that ran; the other tasks were reused from the cache
    log_path: Path | None = None
    learning: dict[str, Any] | None = None  # start vs final on the same episodes (report.py)
    learning_since_base: dict[str, Any] | None = None  # base model (before the warm start) vs final
    ceiling: str | None = None  # the start checkpoint with skills in its prompt (report.py)
    final_checkpoint: Path | None = None  # the last update's checkpoint (None: nothing trains)
    # per evaluation: the share of its actions the env accepted (report.valid_action_rows)
    valid_actions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def overhead_per_task(self) -> float:
        """Seconds per task that ran spent outside the stages' own work (process start,
        imports, I/O)."""
        work = sum(self.stage_seconds.values())
        return (self.pipeline_seconds - work) / max(1, len(self.executed) or self.n_tasks)


def options_for(config: RunConfig) -> PipelineOptions:
    from sdar_core.algos import get_algorithm

    rounds = config.rounds if get_algorithm(config.algorithm).trains else 0
    return PipelineOptions(
        algorithm=config.algorithm,
        env=config.env,
        rounds=rounds,
        warm_start=config.warm_start,
        profile="local",
        exit_handler=False,  # the runner ends the MLflow run itself (closing_mlflow_run)
        eval_every=config.eval_every,
        ceiling=bool(config.ceiling),
    )


def _stage_seconds(mlflow_client: Any, run_id: str, since_ms: int) -> dict[str, float]:
    """Seconds per stage logged since `since_ms` (this invocation, not a resumed run's past)."""
    run = mlflow_client.get_run(run_id)
    out = {}
    for name in run.data.metrics:
        if name.endswith("/duration_s"):
            history = mlflow_client.get_metric_history(run_id, name)
            seconds = [p.value for p in history if p.timestamp >= since_ms]
            if seconds:
                out[name.removesuffix("/duration_s")] = sum(seconds)
    return out


def run_key(
    options: PipelineOptions, arguments: dict[str, str], rounds_per_run: int | None = None
) -> str:
    """A digest of the graph and of every pipeline argument but the run name (and, for a chained
    run, of its chunk length: a chain and one pipeline never share an MLflow run)."""
    payload = {"pipeline": options.name, "exit_handler": options.exit_handler, **arguments}
    # the extra evaluations change the graph, not its name (left out when off: the keys of
    # runs made before they existed stay the same)
    if options.eval_every is not None:
        payload["eval_every"] = options.eval_every
    if options.ceiling:
        payload["ceiling"] = True
    if rounds_per_run is not None and len(split_run(options, rounds_per_run)) > 1:
        payload["rounds_per_run"] = rounds_per_run
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:10]


def _run_name(prefix: str, tracking_uri: str, experiment: str, resume: bool) -> str:
    """The name of the latest run called `<prefix>-...` in the experiment when resuming (its
    MLflow run is marked RUNNING again, a FINISHED one too: its status is the latest
    attempt's), else a new name."""
    from sdar_core.tracking.store import client

    if resume:
        mlflow_client = client(tracking_uri)
        found = mlflow_client.get_experiment_by_name(experiment)
        runs = mlflow_client.search_runs(
            [found.experiment_id],
            filter_string=f"attributes.run_name LIKE '{prefix}-%'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if runs:
            mlflow_client.update_run(runs[0].info.run_id, status="RUNNING")
            return runs[0].info.run_name
    return f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"


def _not_accelerator_detection(record: logging.LogRecord) -> bool:
    return "Setting accelerator to" not in record.getMessage()


def _quiet_launcher() -> None:
    """What this process prints while it sets up (the tasks log into the log file): the success
    table reads evaluation JSONs back with no progress bar; no MLflow INFO lines about a new
    store's tables; and not DeepSpeed's warning that it found no GPU (accelerate imports
    DeepSpeed while a model is saved; this process never uses it)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    deepspeed_logger = logging.getLogger("DeepSpeed")
    if _not_accelerator_detection not in deepspeed_logger.filters:
        deepspeed_logger.addFilter(_not_accelerator_detection)


def _task_dirs(pipeline_root: Path) -> set[Path]:
    """The task output folders under the pipeline root (one per task that ran, per run)."""
    runs = [run for run in pipeline_root.glob("*") if run.is_dir() and not run.name.startswith(".")]
    return {task for run in runs for task in run.iterdir() if task.is_dir()}


def run_local(config: RunConfig, *, beside_others: bool = False) -> LocalRunResult:
    """Set up the inputs and run (or resume) the pipeline under kfp.local (module docstring),
    holding the out-dir's lock: a second run there is refused (sdar_core.run.lock).

    `beside_others`: this run is one of several that a parent process runs at once in the
    out-dir (`sdar replicate --workers`, pipelines/run_worker.py); the parent holds the lock and
    cleaned the pipeline root, so this run does neither (another run's task under way looks
    unfinished)."""
    if beside_others:
        return _run_local(config, clean=False)
    with out_dir_lock(config.out_dir):
        return _run_local(config, clean=True)


def _run_local(config: RunConfig, *, clean: bool) -> LocalRunResult:
    from kfp import local

    from sdar_core.tracking.store import client, end_runs_named, finish_run, run_store

    _quiet_launcher()
    started = time.perf_counter()
    prepared = prepare_inputs(config)
    options = options_for(config)
    chunks = split_run(options, config.rounds_per_run)
    pipelines = [build_pipeline(chunk) for chunk in chunks]
    identity = input_identity(str(prepared.model_dir), str(prepared.games_dir))
    setup_seconds = time.perf_counter() - started
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(prepared.pipeline_root),
        raise_on_error=True,
        enable_caching=True,
    )
    used = used_stage_configs(options, options.check())  # the compiled graph's parameters
    arguments = {
        "model_uri": str(prepared.model_dir),
        "games_uri": str(prepared.games_dir),
        "mlflow_tracking_uri": prepared.tracking_uri,
        "experiment": config.experiment,
        "inputs_json": json.dumps(identity, sort_keys=True),
        **{k: v for k, v in stage_config_json(config).items() if k in used},
    }
    prefix = f"{options.name}-{run_key(options, arguments, config.rounds_per_run)}"
    run_name = _run_name(prefix, prepared.tracking_uri, config.experiment, config.resume)
    log_path = config.out_dir.resolve() / "logs" / f"{run_name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    print(f"set-up {setup_seconds:.0f} s; task logs: {log_path}", flush=True)
    if clean:
        remove_unfinished(prepared.pipeline_root)  # what killed attempts left: never reused
    before = _task_dirs(prepared.pipeline_root)
    started, started_ms = time.perf_counter(), int(time.time() * 1000)
    labels = {k: v for pipeline in pipelines for k, v in task_labels(pipeline).items()}
    n_tasks = sum(count_tasks(chunk) for chunk in chunks)
    try:
        with (
            closing_mlflow_run(prepared.tracking_uri, config.experiment, run_name),
            _quiet(log_path, n_tasks),
            verified_cache(labels),  # a damaged cached output is run again
            stopping_at_failures(log_path),
            warm_tasks(log_path) if config.warm_tasks else contextlib.nullcontext(),
            _evaluation_memo(config.out_dir.resolve() / "eval_memo" if config.resume else None),
        ):
            run_id, final_checkpoint = _run_chain(chunks, pipelines, run_name, arguments)
    except StageFailed:
        raise  # its one line and the log path are the whole story (sdar run prints them)
    except BaseException:
        print(f"the pipeline failed: see {log_path}", file=sys.stderr)
        raise
    pipeline_seconds = time.perf_counter() - started
    finish_run(prepared.tracking_uri, run_id)
    # an older run of this name whose start the cache no longer held (it was not resumed)
    end_runs_named(prepared.tracking_uri, config.experiment, run_name, status="KILLED")
    mlflow_client = client(prepared.tracking_uri)
    store = run_store(prepared.tracking_uri)
    evaluations = load_evaluations(store, run_id)
    return LocalRunResult(
        run_id=run_id,
        tracking_uri=prepared.tracking_uri,
        rows=success_table(store, run_id, evaluations),
        setup_seconds=setup_seconds,
        pipeline_seconds=pipeline_seconds,
        stage_seconds=_stage_seconds(mlflow_client, run_id, started_ms),
        n_tasks=n_tasks,
        run_name=run_name,
        executed=tuple(sorted(p.name for p in _task_dirs(prepared.pipeline_root) - before)),
        log_path=log_path,
        learning=learning_summary(evaluations),
        learning_since_base=learning_summary(evaluations, since="base"),
        ceiling=ceiling_line(evaluations),
        final_checkpoint=final_checkpoint,
        valid_actions=valid_action_rows(evaluations),
    )


def _run_chain(
    chunks: list[PipelineOptions], pipelines: list[Any], run_name: str, arguments: dict[str, str]
) -> tuple[str, Path | None]:
    """Run the chunks' pipelines in order, each later one from the previous one's final
    checkpoint with the run's start model as KL reference, all into the MLflow run of the chain
    (`chain_id`: the run name); return the MLflow run id and the final checkpoint (None when
    nothing trains). One pipeline: just run it."""
    chained = len(chunks) > 1
    given = dict(arguments)
    for chunk, pipeline in zip(chunks, pipelines, strict=True):
        if chained:
            given["chain_id"] = run_name
        task = pipeline(run_name=run_name, **given)
        if not chunk.rounds:  # a preset that does not train returns the run id alone
            return task.output, None
        checkpoint = task.outputs["checkpoint"].path
        given = {k: v for k, v in arguments.items() if k != "inputs_json"} | {
            "model_uri": checkpoint,
            "start_model_uri": task.outputs["start_model"].path,
        }
    return task.outputs["run_id"], Path(checkpoint)


@contextlib.contextmanager
def _evaluation_memo(folder: Path | None) -> Iterator[None]:
    """The tasks' `SDAR_EVAL_MEMO`: `folder` (None: off), unless the environment sets it."""
    from sdar_core.evaluation.memo import MEMO_ENV

    if MEMO_ENV in os.environ:
        yield
        return
    os.environ[MEMO_ENV] = "" if folder is None else str(folder)
    try:
        yield
    finally:
        os.environ.pop(MEMO_ENV, None)


@contextlib.contextmanager
def _quiet(log_path: Path, total_tasks: int) -> Iterator[None]:
    """kfp.local's output and warnings into `log_path`; stage lines and a progress bar on the
    terminal (`ConsoleFilter`). kfp.local makes its log handler on sys.stdout per task, so the
    redirection reaches it."""
    terminal = sys.stdout
    with open(log_path, "a") as log, ConsoleFilter(log, terminal, total_tasks=total_tasks) as out:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            yield


def count_tasks(options: PipelineOptions) -> int:
    """Tasks the pipeline (or the chunk of a chained run) runs, importers included."""
    algo = options.check()
    per_round = 3 if algo.needs_teacher else 2
    finals = 1 if options.rounds and options.ends_run else 0
    evaluations = finals + len(eval_rounds(options))  # final, every eval_every-th round
    if options.continues_run:  # continue_chain, three importers, index_skills
        return 5 + int(options.exit_handler) + options.rounds * per_round + evaluations
    # start_tracking, two importers, index_skills, [evaluate(base), sft], evaluate(start),
    # [evaluate(ceiling)], [join_chain], rounds, evaluations, [exit handler]
    extra = 2 * int(options.warm_start) + int(options.exit_handler) + int(options.chained)
    extra += int(options.ceiling)
    return 5 + extra + options.rounds * per_round + evaluations
