"""A local MLflow store (sqlite file, local artifact folder) read and written with sqlite3.

Why: every pipeline task is a fresh interpreter, and an MlflowClient on a sqlite store costs
about 3.5 s before its first query (importing mlflow ~1.6 s, then its SQLAlchemy store and
alembic ~1.8 s; `python benchmarks/stage_overhead.py`) to log a few metrics. `SqliteRunStore`
does what the stages need — create the pipeline run, log params, tags, metrics and local
artifacts, end the run, read metric histories and artifacts back — by writing the rows that
MLflow's SqlAlchemyStore writes (tests/test_tracking_sqlite.py compares the two row by row), in
milliseconds and without importing mlflow.

It serves only a store whose schema revision is the one the pinned MLflow writes
(`SCHEMA_REVISION`; a test checks it against MLflow's migrations): a missing file, another
revision or an artifact location that is not a local folder goes through MLflow (store.py).
Departures from MLflow's store: its name and length validation is not repeated (sdar's metric
names are fixed, store.py cuts values to MLflow's limits); logged models, datasets and traces
are not written.

`SqliteRunStore.relocate_experiment` re-points a moved store: MLflow keeps absolute artifact
locations and has no API to change them (mlflow/mlflow#3144, #3719), so that is SQL as well.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from sdar_core.errors import SdarError

__all__ = [
    "SCHEMA_REVISION",
    "Experiment",
    "SqliteRunStore",
    "copy_artifact",
    "list_artifact_folder",
    "local_path",
    "open_sqlite_store",
    "sqlite_path",
]

SCHEMA_REVISION = "dc11669786a5"  # alembic head of mlflow 3.17.2 (tests check the pinned one)
_MAX_FLOAT = 1.7976931348623157e308  # MLflow stores +/-inf as the largest finite double
_TEMP_PREFIX = ".artifact.uploading."  # the staging-file prefix of MLflow's local repository


@dataclass(frozen=True)
class Experiment:
    experiment_id: str
    artifact_location: str
    lifecycle_stage: str
    tags: dict[str, str]


def sqlite_path(tracking_uri: str) -> Path | None:
    """The file of a `sqlite:///<path>` URI, else None."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    return Path(tracking_uri.removeprefix("sqlite:///"))


def local_path(location: str) -> Path | None:
    """The folder of a local artifact location (`file://` URI or absolute path), else None."""
    parsed = urlparse(location)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        return Path(unquote(parsed.path))
    if parsed.scheme == "" and os.path.isabs(location):
        return Path(location)
    return None


def _same_form(template: str, path: Path) -> str:
    """`path` written the way `template` is: a file URI or a bare path."""
    return path.as_uri() if template.startswith("file:") else str(path)


def open_sqlite_store(tracking_uri: str) -> SqliteRunStore | None:
    """A store for `tracking_uri` when it is an existing sqlite file of `SCHEMA_REVISION`."""
    path = sqlite_path(tracking_uri)
    if path is None or not path.is_file():
        return None
    store = SqliteRunStore(path)
    try:
        with store._session() as db:
            (revision,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
    except (sqlite3.Error, TypeError):  # not an MLflow store yet, or locked beyond the timeout
        return None
    return store if revision == SCHEMA_REVISION else None


class SqliteRunStore:
    """Runs of a local MLflow sqlite store, through sqlite3 (module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @contextlib.contextmanager
    def _session(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction; a writer takes the database lock first (BEGIN IMMEDIATE)."""
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()

    # experiments and runs

    def experiment(self, name: str) -> Experiment | None:
        with self._session() as db:
            rows = db.execute(
                "SELECT experiment_id, artifact_location, lifecycle_stage FROM experiments "
                "WHERE name = ?",
                (name,),
            ).fetchall()
            if not rows:
                return None
            if len(rows) > 1:
                raise SdarError(f"{self.path} holds {len(rows)} experiments named {name!r}")
            experiment_id, location, stage = rows[0]
            tags = dict(
                db.execute(
                    "SELECT key, value FROM experiment_tags WHERE experiment_id = ?",
                    (experiment_id,),
                ).fetchall()
            )
        return Experiment(str(experiment_id), location, stage, tags)

    def relocate_experiment(
        self, experiment: Experiment, old_folder: Path, new_folder: Path
    ) -> str:
        """Rewrite every artifact location of `experiment` under `old_folder` (the
        experiment's, its runs' and its logged models') to the same place under `new_folder`;
        return the experiment's new location."""

        def moved(location: str) -> str:
            path = local_path(location)
            if path is None or not path.is_relative_to(old_folder):
                return location
            return _same_form(location, new_folder / path.relative_to(old_folder))

        experiment_id = int(experiment.experiment_id)
        with self._session(write=True) as db:
            db.execute(
                "UPDATE experiments SET artifact_location = ?, last_update_time = ? "
                "WHERE experiment_id = ?",
                (moved(experiment.artifact_location), _now_ms(), experiment_id),
            )
            for table, key, column in (
                ("runs", "run_uuid", "artifact_uri"),
                ("logged_models", "model_id", "artifact_location"),
            ):
                rows = db.execute(
                    f"SELECT {key}, {column} FROM {table} WHERE experiment_id = ?",
                    (experiment_id,),
                ).fetchall()
                db.executemany(
                    f"UPDATE {table} SET {column} = ? WHERE {key} = ?",
                    [(moved(location), row_id) for row_id, location in rows],
                )
        return moved(experiment.artifact_location)

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        with self._session(write=True) as db:
            db.execute(
                "INSERT INTO experiment_tags (key, value, experiment_id) VALUES (?, ?, ?) "
                "ON CONFLICT (key, experiment_id) DO UPDATE SET value = excluded.value",
                (key, value, int(experiment_id)),
            )

    def create_run(
        self, experiment_id: str, *, run_name: str, tags: Mapping[str, str] | None = None
    ) -> str:
        """A RUNNING run, as MlflowClient.create_run makes it; its artifacts go to
        `<experiment location>/<run id>/artifacts`."""
        run_id = uuid.uuid4().hex
        tags = dict(tags or {}) | {"mlflow.runName": run_name}
        with self._session(write=True) as db:
            row = db.execute(
                "SELECT artifact_location, lifecycle_stage FROM experiments "
                "WHERE experiment_id = ?",
                (int(experiment_id),),
            ).fetchone()
            if row is None or row[1] != "active":
                raise SdarError(f"experiment {experiment_id} is missing or deleted in {self.path}")
            artifact_uri = f"{row[0].rstrip('/')}/{run_id}/artifacts"
            db.execute(
                "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, "
                "user_id, status, start_time, end_time, source_version, lifecycle_stage, "
                "artifact_uri, experiment_id, deleted_time) "
                "VALUES (?, ?, 'UNKNOWN', '', '', ?, 'RUNNING', ?, NULL, '', 'active', ?, ?, NULL)",
                (
                    run_id,
                    run_name,
                    tags.get("mlflow.user", "unknown"),
                    _now_ms(),
                    artifact_uri,
                    int(experiment_id),
                ),
            )
            db.executemany(
                "INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)",
                [(key, value, run_id) for key, value in tags.items()],
            )
        return run_id

    def _active_run(self, db: sqlite3.Connection, run_id: str) -> tuple[str, str]:
        """(status, artifact_uri) of `run_id`, refused like MLflow's when it is deleted."""
        row = db.execute(
            "SELECT lifecycle_stage, status, artifact_uri FROM runs WHERE run_uuid = ?", (run_id,)
        ).fetchone()
        if row is None:
            raise SdarError(f"run {run_id!r} not found in {self.path}")
        if row[0] != "active":
            raise SdarError(f"the run {run_id} must be in the 'active' state, not {row[0]!r}")
        return row[1], row[2]

    def set_terminated(self, run_id: str, status: str = "FINISHED") -> None:
        with self._session(write=True) as db:
            self._active_run(db, run_id)
            db.execute(
                "UPDATE runs SET status = ?, end_time = ? WHERE run_uuid = ?",
                (status, _now_ms(), run_id),
            )

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        """New params are added; a param already logged with another value is refused."""
        with self._session(write=True) as db:
            self._active_run(db, run_id)
            logged = dict(db.execute("SELECT key, value FROM params WHERE run_uuid = ?", (run_id,)))
            changed = {k: (logged[k], v) for k, v in params.items() if logged.get(k, v) != v}
            if changed:
                raise SdarError(f"changing param values is not allowed (run {run_id}): {changed}")
            db.executemany(
                "INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)",
                [(k, v, run_id) for k, v in params.items() if k not in logged],
            )

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        with self._session(write=True) as db:
            self._active_run(db, run_id)
            if "mlflow.runName" in tags:  # MLflow keeps the run's name and this tag equal
                db.execute(
                    "UPDATE runs SET name = ? WHERE run_uuid = ?", (tags["mlflow.runName"], run_id)
                )
            db.executemany(
                "INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?) "
                "ON CONFLICT (key, run_uuid) DO UPDATE SET value = excluded.value",
                [(k, v, run_id) for k, v in tags.items()],
            )

    # metrics

    def log_metrics(
        self, run_id: str, metrics: Mapping[str, float], *, step: int, timestamp_ms: int
    ) -> None:
        """Append one point per metric, and update the run's latest values the way MLflow does:
        a point replaces the latest one when its (step, timestamp, value) is larger."""
        points = []
        for key, raw in metrics.items():
            value = float(raw)
            is_nan = math.isnan(value)
            if is_nan:
                value = 0.0
            elif math.isinf(value):
                value = math.copysign(_MAX_FLOAT, value)
            points.append((key, value, timestamp_ms, step, int(is_nan)))
        with self._session(write=True) as db:
            self._active_run(db, run_id)
            new = []
            for key, value, stamp, point_step, is_nan in points:
                inserted = db.execute(
                    "INSERT OR IGNORE INTO metrics (key, value, timestamp, run_uuid, step, "
                    "is_nan) VALUES (?, ?, ?, ?, ?, ?)",
                    (key, value, stamp, run_id, point_step, is_nan),
                ).rowcount
                if inserted:  # MLflow skips points already stored
                    new.append((key, value, stamp, point_step, is_nan))
            for key, value, stamp, point_step, is_nan in new:
                latest = db.execute(
                    "SELECT step, timestamp, value FROM latest_metrics "
                    "WHERE run_uuid = ? AND key = ?",
                    (run_id, key),
                ).fetchone()
                if latest is None:
                    db.execute(
                        "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, "
                        "run_uuid) VALUES (?, ?, ?, ?, ?, ?)",
                        (key, value, stamp, point_step, is_nan, run_id),
                    )
                elif (point_step, stamp, value) > tuple(latest):
                    db.execute(
                        "UPDATE latest_metrics SET value = ?, timestamp = ?, step = ?, "
                        "is_nan = ? WHERE run_uuid = ? AND key = ?",
                        (value, stamp, point_step, is_nan, run_id, key),
                    )

    def metric_names(self, run_id: str) -> list[str]:
        with self._session() as db:
            rows = db.execute(
                "SELECT key FROM latest_metrics WHERE run_uuid = ? ORDER BY key", (run_id,)
            )
            return [key for (key,) in rows]

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """(step, value) of every point, in MLflow's order (timestamp, step, value); NaN
        points read back as NaN."""
        with self._session() as db:
            rows = db.execute(
                "SELECT step, value, is_nan FROM metrics WHERE run_uuid = ? AND key = ? "
                "ORDER BY timestamp, step, value",
                (run_id, key),
            ).fetchall()
        return [(int(step), math.nan if is_nan else float(value)) for step, value, is_nan in rows]

    def artifact_uri(self, run_id: str) -> str:
        with self._session() as db:
            row = db.execute(
                "SELECT artifact_uri FROM runs WHERE run_uuid = ?", (run_id,)
            ).fetchone()
        if row is None:
            raise SdarError(f"run {run_id!r} not found in {self.path}")
        return row[0]


def copy_artifact(path: Path, folder: Path) -> None:
    """Copy a file into `folder` (via a hidden temporary file, then a rename, as MLflow's local
    repository does) or a folder's content into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        shutil.copytree(path, folder, copy_function=shutil.copyfile, dirs_exist_ok=True)
        return
    handle, staging = tempfile.mkstemp(dir=folder, prefix=_TEMP_PREFIX)
    os.close(handle)
    try:
        shutil.copyfile(path, staging)
        shutil.copystat(path, staging)
        os.replace(staging, folder / path.name)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(staging)
        raise


def list_artifact_folder(folder: Path) -> list[str]:
    """Names in a local artifact folder, sorted, without MLflow's staging files."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(_TEMP_PREFIX))


def _now_ms() -> int:
    return int(time.time() * 1000)
