"""The MLflow experiment and the one run per pipeline run.

`prepare_experiment` runs in the parent process before a pipeline starts: a fresh sqlite store
costs about 5 s of schema migrations (DESIGN.md §4), which must not be paid inside a task, and a
local store needs an absolute artifact location or each task (with its own working directory)
would write artifacts somewhere else. `start_run` creates the run and logs the parameters once;
the stages then log metrics into it by id (stage.py).

The stages reach the run through `RunStore`: on a local sqlite store it writes MLflow's tables
with sqlite3 (sqlite_store.py), so that a task never imports mlflow (≈ 3.5 s per task); any
other store goes through an MlflowClient. MLflow is imported inside the functions so that
importing sdar_core stays cheap.

A local store is portable: an experiment whose artifacts lie in the store's folder records that
folder (experiment tag `sdar.store_folder`), and when the store is found in another folder (the
folder was moved or copied, e.g. `cp -r runs/embedded elsewhere`) `prepare_experiment` re-points
the experiment's and its runs' artifact locations there, so a copy never writes into the
original.

A fresh local store is created once, atomically (`create_store_once`): MLflow's migrations run on
a private file beside it, which is then linked into place under the store's name, a step that
fails when the name exists. Two processes creating the same store each migrate their own file
and one link wins (MLflow migrating one file from two processes at once fails with "duplicate
column name"), and a run killed during the migrations leaves no half-made store.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sdar_core.errors import ConfigError
from sdar_core.tracking.sqlite_store import (
    Experiment,
    SqliteRunStore,
    copy_artifact,
    list_artifact_folder,
    local_path,
    open_sqlite_store,
    sqlite_path,
)

__all__ = [
    "EXPERIMENT_KIND",
    "EXPERIMENT_KIND_TAG",
    "STORE_FOLDER_TAG",
    "RunStore",
    "client",
    "create_store_once",
    "end_runs_named",
    "existing_store_uri",
    "finish_run",
    "flat_params",
    "prepare_experiment",
    "run_store",
    "sqlite_uri",
    "start_run",
]

_BATCH = 100  # MLflow accepts at most 100 params or tags per log_batch call
_METRIC_BATCH = 1000  # and at most 1000 metrics
_MAX_VALUE = 6000  # and param values of at most 6000 characters
STORE_FOLDER_TAG = "sdar.store_folder"  # where a local store was when its locations were written
# MLflow 3's UI shows an experiment as GenAI ("genai_development": traces, evaluations) or as
# model training ("custom_model_development": runs, metrics, charts) by this experiment tag,
# guessing when it is missing; our experiments hold training runs, so we say so
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


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


def _check_uri(tracking_uri: str) -> None:
    if not tracking_uri:
        raise ConfigError(
            "the MLflow tracking URI is empty: pass e.g. sqlite:///$PWD/mlflow.db or "
            "http://mlflow.mlflow.svc:5000"
        )


def client(tracking_uri: str) -> Any:
    """An MlflowClient bound to `tracking_uri`."""
    _check_uri(tracking_uri)
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


class RunStore:
    """What the stages log into a run and read back from it: through sqlite3 on a local
    sqlite store of the pinned schema, else through an MlflowClient made on first use."""

    def __init__(self, tracking_uri: str) -> None:
        _check_uri(tracking_uri)
        self.tracking_uri = tracking_uri
        self.sqlite = open_sqlite_store(tracking_uri)
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = client(self.tracking_uri)
        return self._client

    def experiment(self, name: str) -> Experiment | None:
        if self.sqlite is not None:
            return self.sqlite.experiment(name)
        found = self.client.get_experiment_by_name(name)
        if found is None:
            return None
        location = found.artifact_location
        return Experiment(found.experiment_id, location, found.lifecycle_stage, dict(found.tags))

    def create_run(self, experiment_id: str, *, run_name: str, tags: Mapping[str, str]) -> str:
        if self.sqlite is not None:
            return self.sqlite.create_run(experiment_id, run_name=run_name, tags=tags)
        run = self.client.create_run(experiment_id, run_name=run_name, tags=dict(tags))
        return run.info.run_id

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        if self.sqlite is not None:
            return self.sqlite.log_params(run_id, params)
        from mlflow.entities import Param

        items = sorted(params.items())
        for start in range(0, len(items), _BATCH):
            chunk = [Param(k, v) for k, v in items[start : start + _BATCH]]
            self.client.log_batch(run_id, params=chunk)

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        if self.sqlite is not None:
            return self.sqlite.set_tags(run_id, tags)
        from mlflow.entities import RunTag

        items = sorted(tags.items())
        for start in range(0, len(items), _BATCH):
            chunk = [RunTag(k, v) for k, v in items[start : start + _BATCH]]
            self.client.log_batch(run_id, tags=chunk)

    def log_metrics(
        self, run_id: str, metrics: Mapping[str, float], *, step: int, timestamp_ms: int
    ) -> None:
        if self.sqlite is not None:
            return self.sqlite.log_metrics(run_id, metrics, step=step, timestamp_ms=timestamp_ms)
        from mlflow.entities import Metric

        points = [Metric(k, float(v), timestamp_ms, step) for k, v in sorted(metrics.items())]
        for start in range(0, len(points), _METRIC_BATCH):
            self.client.log_batch(run_id, metrics=points[start : start + _METRIC_BATCH])

    def set_terminated(self, run_id: str, status: str = "FINISHED") -> None:
        if self.sqlite is not None:
            return self.sqlite.set_terminated(run_id, status)
        self.client.set_terminated(run_id, status=status)

    def metric_names(self, run_id: str) -> list[str]:
        if self.sqlite is not None:
            return self.sqlite.metric_names(run_id)
        return sorted(self.client.get_run(run_id).data.metrics)

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """(step, value) of every logged point of `key`."""
        if self.sqlite is not None:
            return self.sqlite.metric_history(run_id, key)
        return [(int(p.step), float(p.value)) for p in self.client.get_metric_history(run_id, key)]

    def _artifact_root(self, run_id: str) -> Path | None:
        """The run's artifact folder when the fast path can reach it (a local folder)."""
        if self.sqlite is None:
            return None
        return local_path(self.sqlite.artifact_uri(run_id))

    def log_artifact(self, run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
        """Upload a file, or a folder's content, into the run (under `artifact_path`)."""
        path = Path(path)
        root = self._artifact_root(run_id)
        if root is not None:
            copy_artifact(path, root / artifact_path if artifact_path else root)
        elif path.is_dir():
            self.client.log_artifacts(run_id, str(path), artifact_path)
        else:
            self.client.log_artifact(run_id, str(path), artifact_path)

    def list_artifacts(self, run_id: str, folder: str) -> list[str]:
        """Paths (relative to the run's artifact root) of what `folder` holds, sorted."""
        root = self._artifact_root(run_id)
        if root is not None:
            return [f"{folder}/{name}" for name in list_artifact_folder(root / folder)]
        return [f.path for f in self.client.list_artifacts(run_id, folder)]

    def read_text(self, run_id: str, path: str) -> str:
        root = self._artifact_root(run_id)
        if root is not None:
            return (root / path).read_text()
        with tempfile.TemporaryDirectory() as tmp:
            return Path(self.client.download_artifacts(run_id, path, tmp)).read_text()


def run_store(tracking_uri: str) -> RunStore:
    """The `RunStore` of `tracking_uri` (class docstring)."""
    return RunStore(tracking_uri)


def create_store_once(tracking_uri: str) -> bool:
    """Create the local sqlite store of `tracking_uri` when it does not exist (module docstring);
    return whether this call created it. Other stores are left to MLflow."""
    db = sqlite_path(tracking_uri)
    if db is None or db.exists():
        return False
    from mlflow.store.tracking import DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    db = db.resolve()
    db.parent.mkdir(parents=True, exist_ok=True)
    tmp = db.with_name(f".{db.name}.creating-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        tmp_uri = sqlite_uri(tmp)
        # the artifact root MLflow's client gives a store it creates (its Default experiment)
        made = SqlAlchemyStore(tmp_uri, DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH)
        made.engine.dispose()
        with contextlib.suppress(AttributeError, KeyError):
            del SqlAlchemyStore._engine_map[tmp_uri]  # MLflow caches one engine per URI
        try:
            os.link(tmp, db)  # no-clobber: refuses when another process linked its store first
        except FileExistsError:
            return False
        except OSError:  # a filesystem without hard links: a rename, which a racer may replace
            if db.exists():
                return False
            tmp.replace(db)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def prepare_experiment(
    tracking_uri: str, experiment: str, *, artifact_root: str | Path | None = None
) -> str:
    """Create `experiment` if missing (migrating a fresh store); return its id.

    With `artifact_root` the experiment stores artifacts under that folder (absolute). An
    existing experiment of a local store that was moved is re-pointed (module docstring).
    """
    create_store_once(tracking_uri)
    store = run_store(tracking_uri)
    found = store.experiment(experiment)
    if found is not None:
        if store.sqlite is not None:
            _follow_moved_store(store.sqlite, found, artifact_root, experiment)
        if EXPERIMENT_KIND_TAG not in found.tags:  # made before sdar set it
            _set_experiment_tag(store, found.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        return found.experiment_id
    location, tags = None, {EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
    if artifact_root is not None:
        folder = Path(artifact_root).resolve() / experiment
        folder.mkdir(parents=True, exist_ok=True)
        location = folder.as_uri()
        db = sqlite_path(tracking_uri)
        if db is not None and folder.is_relative_to(db.resolve().parent):
            tags[STORE_FOLDER_TAG] = str(db.resolve().parent)
    from mlflow.exceptions import MlflowException

    try:
        return store.client.create_experiment(experiment, artifact_location=location, tags=tags)
    except MlflowException as err:  # another process created it since the lookup above
        if err.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        return store.client.get_experiment_by_name(experiment).experiment_id


def _set_experiment_tag(store: RunStore, experiment_id: str, key: str, value: str) -> None:
    if store.sqlite is not None:
        store.sqlite.set_experiment_tag(experiment_id, key, value)
    else:
        store.client.set_experiment_tag(experiment_id, key, value)


def _follow_moved_store(
    store: SqliteRunStore, found: Experiment, artifact_root: str | Path | None, name: str
) -> None:
    """Re-point `found`'s artifact locations when its local store has moved from the folder
    recorded in its `STORE_FOLDER_TAG`. An experiment without the tag (made before sdar
    recorded it) is adopted when `artifact_root` lies in the store's folder and the experiment
    keeps its artifacts at the same place relative to another folder, whose copy is here."""
    folder = store.path.resolve().parent
    location = local_path(found.artifact_location)
    recorded = found.tags.get(STORE_FOLDER_TAG)
    if location is None:
        return
    if recorded is None:
        if artifact_root is None:
            return
        expected = Path(artifact_root).resolve() / name
        if not expected.is_relative_to(folder):
            return
        layout = expected.relative_to(folder).parts
        if location == expected:
            recorded = str(folder)
        elif location.parts[-len(layout) :] == layout and expected.is_dir():
            recorded = str(Path(*location.parts[: -len(layout)]))
        else:
            return
    old = Path(recorded)
    if old != folder and location.is_relative_to(old):
        moved_to = store.relocate_experiment(found, old, folder)
        print(
            f"the MLflow store {store.path} was moved from {old}: experiment {name!r} "
            f"now keeps its artifacts in {moved_to}",
            file=sys.stderr,
        )
    if found.tags.get(STORE_FOLDER_TAG) != str(folder):
        store.set_experiment_tag(found.experiment_id, STORE_FOLDER_TAG, str(folder))


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
    experiment_id = prepare_experiment(tracking_uri, experiment)
    store = run_store(tracking_uri)
    run_id = store.create_run(experiment_id, run_name=run_name, tags=dict(tags or {}))
    store.log_params(run_id, flat_params(params))
    store.set_tags(run_id, {"sdar.pipeline_run": "true"})
    return run_id


def finish_run(tracking_uri: str, run_id: str, *, status: str = "FINISHED") -> None:
    """Mark the run FINISHED (or FAILED / KILLED)."""
    run_store(tracking_uri).set_terminated(run_id, status=status)


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
