"""One function per pipeline stage, each called by exactly one KFP component (`components/`).

A stage function parses its config from JSON (the form in which configs cross the component
boundary), applies what the algorithm preset decides (the algorithm name, skills in the student
prompt, the run's length for the update's schedule), calls the library entry point, and logs the
summary into the pipeline's MLflow run with step = round. It returns the flat metrics for the
component's Metrics output. The components stay declarations; everything testable lives here.

A task's process ends right after its stage, and with torch loaded the interpreter's last
garbage collections take 1.5 s (sentence-transformers: 4 s) of a task's wall time; a stage
therefore freezes the collector at exit (`gc.freeze` from an atexit handler, as spack does:
atexit handlers, weakref finalizers and the flushing of stdout/stderr still run; only finalizers
of objects alive at exit, which Python does not promise to run, are skipped).
"""

from __future__ import annotations

import atexit
import functools
import gc
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from sdar_core.errors import ConfigError
from sdar_core.tracking import StageTracker

__all__ = [
    "Tracking",
    "continue_chain_stage",
    "end_tracking_stage",
    "eval_series",
    "evaluate_stage",
    "index_stage",
    "join_chain_stage",
    "log_metrics_output",
    "parse_config",
    "rollout_stage",
    "start_tracking_stage",
    "teacher_stage",
    "update_stage",
    "warmstart_stage",
]

C = TypeVar("C", bound=BaseModel)
STATE_FOLDER = "trainer-state"  # on a shared volume: <volume>/trainer-state/<run id>/iteration-*


@dataclass(frozen=True)
class Tracking:
    """Where a stage logs: the MLflow tracking URI and the pipeline run's id."""

    uri: str
    run_id: str

    def stage(self, stage: str, round: int) -> StageTracker:
        _skip_final_collection()
        return StageTracker(self.uri, self.run_id, stage=stage, round=round)


@functools.cache
def _skip_final_collection() -> None:
    """Freeze the garbage collector when this process exits (module docstring); once."""
    atexit.register(gc.freeze)


def parse_config(cls: type[C], config_json: str, **overrides: Any) -> C:
    """`cls` built from a JSON object plus `overrides`, with a message naming the stage config."""
    try:
        fields = json.loads(config_json or "{}")
    except json.JSONDecodeError as err:
        raise ConfigError(
            f"{cls.__name__} JSON is not valid JSON ({err}): pass a JSON object"
        ) from None
    if not isinstance(fields, dict):
        raise ConfigError(f"{cls.__name__} JSON must be an object, got {type(fields).__name__}")
    try:
        return cls.model_validate(fields | overrides)
    except ValidationError as err:
        raise ConfigError(f"invalid {cls.__name__}: {err}") from None


def start_tracking_stage(
    tracking_uri: str,
    experiment: str,
    run_name: str,
    params: dict[str, Any],
    *,
    inputs: dict[str, Any],
    profile: str,
) -> str:
    """Create the pipeline's MLflow run, log its parameters once (with the model and data as
    `model.uri`, `model.sha256`, `data.uri`, `data.sha256`; a hash is "unknown" where the
    launcher could not read the files) and tag it with algorithm, env, seed and preset (the
    profile whose stage defaults it ran with); return the run id."""
    from sdar_core.tracking import start_run

    seed = params.get("rollout_config", {}).get("seed")
    identity = {
        kind: {
            "uri": inputs[f"{kind}_uri"],
            "sha256": inputs.get(f"{kind}_sha256") or "unknown",
        }
        for kind in ("model", "data")
    }
    flat = {"seed": seed} | params | identity
    tags = {
        "algorithm": str(params.get("algorithm")),
        "env": str(params.get("env")),
        "seed": str(seed),
        "preset": profile,
        "model": Path(str(inputs["model_uri"]).rstrip("/")).name,
    }
    return start_run(tracking_uri, experiment, run_name=run_name, params=flat, tags=tags)


# KFP's final task states -> the MLflow status of a run that had not ended by then
_FINAL_STATES = {"SUCCEEDED": "FINISHED", "CANCELED": "KILLED", "CANCELLED": "KILLED"}


def end_tracking_stage(
    tracking_uri: str, experiment: str, run_name: str, *, state: str, ends_run: bool = True
) -> None:
    """The exit handler: end the pipeline's MLflow run, FAILED unless KFP says it succeeded
    (FINISHED) or was cancelled (KILLED); a run that already ended is left as it is. A chunk
    of a chained run that does not end the run (`ends_run=False`) leaves it RUNNING when it
    succeeded: the next chunk continues it."""
    from sdar_core.tracking.store import end_runs_named

    status = _FINAL_STATES.get(state.upper(), "FAILED")
    if status == "FINISHED" and not ends_run:
        return
    end_runs_named(tracking_uri, experiment, run_name, status=status)


CHAIN_TAG = "sdar.chain_id"  # the MLflow tag naming a chained run's chain


def join_chain_stage(tracking_uri: str, run_id: str, chain_id: str) -> None:
    """Tag the MLflow run as the run of the chain `chain_id` (its later chunks find it so)."""
    from sdar_core.tracking.store import run_store

    if not chain_id.strip():
        raise ConfigError("chain_id is empty: pass the chain's id (sdar submit makes one)")
    run_store(tracking_uri).set_tags(run_id, {CHAIN_TAG: chain_id})


def continue_chain_stage(tracking_uri: str, experiment: str, chain_id: str) -> str:
    """The id of the MLflow run of the chain `chain_id` (the latest started, should a
    resubmitted first chunk have made two), marked RUNNING again: a failed chunk's exit
    handler marked it FAILED, and its resubmission continues it."""
    from sdar_core.tracking.store import client

    mlflow_client = client(tracking_uri)
    found = mlflow_client.get_experiment_by_name(experiment)
    runs = []
    if found is not None:
        runs = mlflow_client.search_runs(
            [found.experiment_id],
            filter_string=f"tags.`{CHAIN_TAG}` = '{chain_id}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
    if not runs:
        raise ConfigError(
            f"no MLflow run of chain {chain_id!r} in experiment {experiment!r}: the chain's first "
            "chunk makes it; run that chunk first (or pass the chain_id it ran with)"
        )
    run_id = runs[0].info.run_id
    if runs[0].info.status != "RUNNING":
        mlflow_client.update_run(run_id, status="RUNNING")
    return run_id


def log_metrics_output(metrics: Any, flat: dict[str, float]) -> None:
    """Log `flat` into a KFP `Output[Metrics]` and also write it to the artifact's file: KFP
    records logged metrics as metadata only, and kfp.local's cache takes an output whose file
    is missing for a lost one, so without the file such a task would never be reused
    (DESIGN.md §4)."""
    for name, value in flat.items():
        metrics.log_metric(name, value)
    path = Path(metrics.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(flat, indent=1, sort_keys=True) + "\n")


def index_stage(env: str, out_dir: str, config_json: str, tracking: Tracking) -> dict[str, float]:
    """Index the skills bundled for `env` (or the bundled library the config names)."""
    from sdar_core.skills import IndexConfig, build_index, bundled_skills_dir
    from sdar_core.skills.index import read_manifest
    from sdar_core.tracking import flatten_metrics

    config = parse_config(IndexConfig, config_json)
    with tracking.stage("index", 0) as tracker:
        build_index(bundled_skills_dir(config.library or env), out_dir, config)
        manifest = read_manifest(out_dir)
        summary = {"n_skills": len(manifest["skill_names"])}
        if "index/n_skills" in tracker.store.metric_names(tracker.run_id):
            # each chunk of a chained run (and a retried task) builds the same index again:
            # its figures are logged once, so the chain's history equals one pipeline's
            return flatten_metrics(summary, prefix="index/")
        return tracker.log(summary)


def warmstart_stage(
    model_dir: str,
    games_dir: str,
    index_dir: str,
    out_dir: str,
    config_json: str,
    tracking: Tracking,
) -> dict[str, float]:
    """Supervised warm start on expert play (skills from `index_dir` in part of the episodes
    when the config asks for it)."""
    from sdar_core.train import SFTConfig, warmstart_sft

    config = parse_config(SFTConfig, config_json)
    with tracking.stage("sft", 0) as tracker:
        metrics = warmstart_sft(model_dir, games_dir, out_dir, config, skills_index_dir=index_dir)
        return tracker.log(metrics)


def rollout_stage(
    model_dir: str,
    games_dir: str,
    index_dir: str,
    out_dir: str,
    config_json: str,
    *,
    algorithm: str,
    round: int,
    tracking: Tracking,
) -> dict[str, float]:
    """Round `round`'s rollouts; skills enter the student prompt when the preset says so."""
    from sdar_core.algos import get_algorithm
    from sdar_core.rollout import RolloutConfig, generate_rollouts
    from sdar_core.run.config import check_group_size

    algo = get_algorithm(algorithm)
    config = parse_config(RolloutConfig, config_json, student_sees_skills=algo.student_sees_skills)
    check_group_size(algorithm, config.group_size)
    with tracking.stage("rollout", round) as tracker:
        summary = generate_rollouts(
            model_dir, games_dir, out_dir, config, skills_index_dir=index_dir, round=round
        )
        return tracker.log(summary)


def teacher_stage(
    model_dir: str,
    trajectories_dir: str,
    index_dir: str,
    out_dir: str,
    config_json: str,
    *,
    algorithm: str,
    round: int,
    tracking: Tracking,
) -> dict[str, float]:
    """Teacher log-probs with retrieved skills in the context."""
    from sdar_core.teacher import TeacherConfig, score_teacher

    config = parse_config(TeacherConfig, config_json)
    with tracking.stage("teacher", round) as tracker:
        summary = score_teacher(
            model_dir, trajectories_dir, index_dir, out_dir, config, algorithm=algorithm
        )
        teacher = {k: v for k, v in summary.items() if k.startswith("teacher_")}
        if "gap_decisive" in summary:  # teacher/gap_decisive/... (sdar_core.teacher.decisive)
            teacher["gap_decisive"] = summary["gap_decisive"]
        return tracker.log(teacher)


def update_stage(
    model_dir: str,
    reference_dir: str,
    trajectories_dir: str,
    out_dir: str,
    config_json: str,
    *,
    algorithm: str,
    round: int,
    total_rounds: int,
    num_gpus: int,
    tracking: Tracking,
    state_volume: str | None = None,
) -> dict[str, float]:
    """The RL update of round `round` of `total_rounds`, resuming the trainer state carried in
    `model_dir` (the previous round's checkpoint), with the run's starting model
    `reference_dir` as KL reference; with num_gpus > 1, DeepSpeed's launcher runs it on every
    GPU of the pod.

    Where the trainer state goes: `<state_dir>/<run id>` when the config sets state_dir, else
    `<state_volume>/trainer-state/<run id>` when the task mounts a shared volume (the pipeline
    passes the run's KFP workspace or the PVC), else inside the checkpoint. Keyed by the MLflow
    run id: unique per training run, and the same for every run of a chain (one MLflow run)."""
    from sdar_core.train import UpdateConfig, sdar_update

    try:  # the run's length, unless the config sets it (parse_config reports bad JSON)
        given = json.loads(config_json or "{}")
    except json.JSONDecodeError:
        given = {}
    has_length = isinstance(given, dict) and given.get("total_iterations")
    fields = {} if has_length else {"total_iterations": total_rounds}
    config = parse_config(UpdateConfig, config_json, algorithm=algorithm, **fields)
    root = config.state_dir or (Path(state_volume) / STATE_FOLDER if state_volume else None)
    if root is not None:
        config = config.model_copy(update={"state_dir": Path(root) / tracking.run_id})
    with tracking.stage("update", round) as tracker:
        if num_gpus > 1:
            metrics = launch_update(
                model_dir, trajectories_dir, out_dir, config, num_gpus, ref_model_dir=reference_dir
            )
        else:
            metrics = sdar_update(
                model_dir, trajectories_dir, out_dir, config, ref_model_dir=reference_dir
            )
        return tracker.log(metrics)


def launch_update(
    model_dir, trajectories_dir, out_dir, config, num_gpus: int, *, ref_model_dir=None
) -> dict[str, Any]:
    """Run `sdar_update` under `deepspeed --num_gpus N`; return the metrics rank 0 wrote
    (timings included, unlike the checkpoint's metrics.json)."""
    from sdar_core.run.launch_update import METRICS_ENV

    if config.backend != "deepspeed":
        raise ConfigError(
            f"num_gpus={num_gpus} runs the update with DeepSpeed's launcher: set backend to "
            "'deepspeed' in the update config (or num_gpus to 1)"
        )
    command = [
        sys.executable,
        "-m",
        "deepspeed.launcher.runner",
        "--num_gpus",
        str(num_gpus),
        "--module",
        "sdar_core.run.launch_update",
        str(model_dir),
        str(trajectories_dir),
        str(out_dir),
        config.model_dump_json(),
    ]
    if ref_model_dir is not None:
        command.append(str(ref_model_dir))
    with tempfile.TemporaryDirectory(prefix="sdar-update-metrics-") as tmp:
        metrics_path = Path(tmp) / "metrics.json"
        subprocess.run(command, check=True, env=os.environ | {METRICS_ENV: str(metrics_path)})
        return json.loads(metrics_path.read_text())


# the base model (before the warm start) and the start checkpoint with the skills in its prompt
# (the teacher's ceiling) are evaluated at round 0 like the start checkpoint: their metrics go to
# series of their own, or MLflow would hold several points at step 0 of eval/...
BASE_SERIES = "eval_base"
CEILING_SERIES = "eval_ceiling"
CEILING_LABEL = "ceiling"
_SERIES = {"base": BASE_SERIES, CEILING_LABEL: CEILING_SERIES}


def eval_series(label: str) -> str:
    """The metric prefix of an evaluation: `eval_base` for the base model, `eval_ceiling` for the
    start checkpoint with skills in its prompt, else `eval` (the start checkpoint at round 0,
    the checkpoints of `eval_every` at their rounds, the final one at round R)."""
    return _SERIES.get(label, "eval")


def evaluate_stage(
    model_dir: str,
    games_dir: str,
    out_path: str,
    config_json: str,
    *,
    algorithm: str,
    label: str,
    round: int,
    tracking: Tracking,
    index_dir: str | None = None,
) -> dict[str, float]:
    """Evaluate a checkpoint (skills in the prompt when the preset says so, or for the label
    "ceiling" whatever the preset, from `index_dir`); log its metrics as `eval/...`
    (`eval_base/...`, `eval_ceiling/...`: eval_series), its JSON and plots (the final one also
    before vs after) and, after the final checkpoint, mark the MLflow run FINISHED."""
    from sdar_core.algos import get_algorithm
    from sdar_core.evaluation import EvalConfig
    from sdar_core.evaluation.memo import evaluate_memoized

    algo = get_algorithm(algorithm)
    sees_skills = algo.student_sees_skills or label == CEILING_LABEL
    config = parse_config(EvalConfig, config_json, student_sees_skills=sees_skills)
    with tracking.stage(eval_series(label), round) as tracker:
        results = evaluate_memoized(
            model_dir, games_dir, out_path, config, skills_index_dir=index_dir
        )
        flat = tracker.log(results["metrics"])
        from sdar_core.run.report import log_evaluation_artifacts

        log_evaluation_artifacts(tracker, out_path, label=label)
    if label == "final":  # the last task of a training pipeline closes the MLflow run
        from sdar_core.tracking import finish_run

        finish_run(tracking.uri, tracking.run_id)
    return flat
