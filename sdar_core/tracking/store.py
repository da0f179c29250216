"""The MLflow experiment and the one run per pipeline run.

`prepare_experiment` runs in the parent process before a pipeline starts: a fresh sqlite store
costs about 5 s of schema migrations (DESIGN.md §4), which must not be paid inside a task, and a
local store needs an absolute artifact location or each task (with its own working directory)
would write artifacts somewhere else. `start_run` creates the run and logs the parameters once;
the stages then log metrics into it by id (stage.py). MLflow is imported inside the functions so
that importing sdar_core stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sdar_core.errors import ConfigError

__all__ = [
    "client",
    "end_runs_named",
    "existing_store_uri",
    "finish_run",
    "flat_params",
    "prepare_experiment",
    "sqlite_uri",
    "start_run",
]

_BATCH = 100  # MLflow accepts at most 100 params or tags per log_batch call
_MAX_VALUE = 6000  # and param values of at most 6000 characters


def sqlite_uri(db_path: str | Path) -> str:
    """`sqlite:///<absolute path>` for a local store file."""
    return f"sqlite:///{Path(db_path).resolve()}"


def existing_store_uri(uri_or_path: str) -> str:
    """A tracking URI for reading runs: a path or sqlite URI becomes an absolute sqlite URI,
    refused when the file is missing (MLflow would silently create an empty store there);
    any other URI (http://...) is returned as is."""
    if "://" in uri_or_path and not uri_or_path.startswith("sqlite:"):
        return uri_or_path
    path = Path(uri_or_path.removeprefix("sqlite:///") if "://" in uri_or_path else uri_or_path)
    if not path.is_file():
        raise ConfigError(
            f"no MLflow store at {path.resolve()}: run `sdar run` first, or pass "
            "--tracking-uri (e.g. sqlite:///$PWD/runs/embedded/mlflow.db)"
        )
    return sqlite_uri(path)


def client(tracking_uri: str) -> Any:
    """An MlflowClient bound to `tracking_uri`."""
    if not tracking_uri:
        raise ConfigError(
            "the MLflow tracking URI is empty: pass e.g. sqlite:///$PWD/mlflow.db or "
            "http://mlflow.mlflow.svc:5000"
        )
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


def prepare_experiment(
    tracking_uri: str, experiment: str, *, artifact_root: str | Path | None = None
) -> str:
    """Create `experiment` if missing (migrating a fresh store); return its id.

    With `artifact_root` the experiment stores artifacts under that folder (absolute).
    """
    mlflow_client = client(tracking_uri)
    found = mlflow_client.get_experiment_by_name(experiment)
    if found is not None:
        return found.experiment_id
    location = None
    if artifact_root is not None:
        folder = Path(artifact_root).resolve() / experiment
        folder.mkdir(parents=True, exist_ok=True)
        location = folder.as_uri()
    return mlflow_client.create_experiment(experiment, artifact_location=location)


def flat_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested mappings flattened to `a.b` keys with string values (MLflow params)."""
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out |= flat_params(value, prefix=f"{name}.")
        else:
            out[name] = str(value)[:_MAX_VALUE]
    return out


def start_run(
    tracking_uri: str,
    experiment: str,
    *,
    run_name: str,
    params: Mapping[str, Any],
    tags: Mapping[str, str] | None = None,
) -> str:
    """Create the pipeline run's MLflow run, log `params` once (flattened); return the run id."""
    from mlflow.entities import Param, RunTag

    mlflow_client = client(tracking_uri)
    experiment_id = prepare_experiment(tracking_uri, experiment)
    run = mlflow_client.create_run(experiment_id, run_name=run_name, tags=dict(tags or {}))
    run_id = run.info.run_id
    items = sorted(flat_params(params).items())
    for start in range(0, len(items), _BATCH):
        chunk = [Param(k, v) for k, v in items[start : start + _BATCH]]
        mlflow_client.log_batch(run_id, params=chunk)
    mlflow_client.log_batch(run_id, tags=[RunTag("sdar.pipeline_run", "true")])
    return run_id


def finish_run(tracking_uri: str, run_id: str, *, status: str = "FINISHED") -> None:
    """Mark the run FINISHED (or FAILED / KILLED)."""
    client(tracking_uri).set_terminated(run_id, status=status)


def end_runs_named(tracking_uri: str, experiment: str, run_name: str, *, status: str) -> list[str]:
    """Mark every run of `experiment` named `run_name` that has not ended (RUNNING) with
    `status` (FINISHED, FAILED or KILLED); return their ids. For a runner that dies before it
    learns the run id, and for the cluster pipeline's exit handler."""
    mlflow_client = client(tracking_uri)
    found = mlflow_client.get_experiment_by_name(experiment)
    if found is None:
        return []
    runs = mlflow_client.search_runs(
        [found.experiment_id],
        filter_string=f"attributes.run_name = '{run_name}' and attributes.status = 'RUNNING'",
    )
    for run in runs:
        mlflow_client.set_terminated(run.info.run_id, status=status)
    return [run.info.run_id for run in runs]
