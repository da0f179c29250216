"""The sqlite3 path of the tracking store: it writes the rows MLflow writes, a task that logs
through it imports neither mlflow nor the model libraries, and a copied store is re-pointed so
that it never writes into the original."""

import json
import math
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from sdar_core.tracking import StageTracker, start_run
from sdar_core.tracking.sqlite_store import SCHEMA_REVISION, local_path
from sdar_core.tracking.store import (
    STORE_FOLDER_TAG,
    RunStore,
    client,
    prepare_experiment,
    sqlite_uri,
)

REPO = Path(__file__).resolve().parents[1]


def test_schema_revision_and_staging_prefix_are_the_pinned_mlflows():
    from mlflow.store.artifact.local_artifact_repo import _TEMP_ARTIFACT_PREFIX
    from mlflow.store.db.utils import _get_latest_schema_revision

    from sdar_core.tracking.sqlite_store import _TEMP_PREFIX

    assert _get_latest_schema_revision() == SCHEMA_REVISION
    assert _TEMP_PREFIX == _TEMP_ARTIFACT_PREFIX


def _log_everything(store: RunStore, experiment_id: str, folder: Path) -> str:
    """The same calls through either path: create, params, tags, metrics (with repeats, NaN,
    inf and an older step), artifacts (a file and a folder), the end."""
    run_id = store.create_run(experiment_id, run_name="r", tags={"algorithm": "sdar"})
    store.log_params(run_id, {"a": "1", "b.c": "x"})
    store.log_params(run_id, {"a": "1"})  # the same value again is accepted
    store.set_tags(run_id, {"sdar.pipeline_run": "true", "algorithm": "grpo"})
    store.log_metrics(run_id, {"m/x": 0.5, "m/y": math.nan}, step=1, timestamp_ms=1000)
    store.log_metrics(run_id, {"m/x": 0.5, "m/z": math.inf}, step=1, timestamp_ms=1000)
    store.log_metrics(run_id, {"m/x": 0.25}, step=0, timestamp_ms=2000)  # older step: not latest
    store.log_metrics(run_id, {"m/x": 0.75, "m/y": 2.0}, step=2, timestamp_ms=1500)
    (folder / "plot.png").write_bytes(b"png")
    (folder / "tree" / "sub").mkdir(parents=True)
    (folder / "tree" / "sub" / "f.json").write_text("{}")
    store.log_artifact(run_id, folder / "plot.png", "eval")
    store.log_artifact(run_id, folder / "tree", "eval/tree")
    store.set_terminated(run_id, "KILLED")
    return run_id


def _rows(db_path: Path, run_id: str) -> dict[str, list[tuple]]:
    with sqlite3.connect(db_path) as db:
        return {
            "runs": db.execute(
                "SELECT name, source_type, source_name, entry_point_name, user_id, status, "
                "source_version, lifecycle_stage, experiment_id, deleted_time, "
                "end_time IS NOT NULL FROM runs WHERE run_uuid = ?",
                (run_id,),
            ).fetchall(),
            **{
                table: sorted(
                    db.execute(f"SELECT {columns} FROM {table} WHERE run_uuid = ?", (run_id,))
                )
                for table, columns in (
                    ("tags", "key, value"),
                    ("params", "key, value"),
                    ("metrics", "key, value, timestamp, step, is_nan"),
                    ("latest_metrics", "key, value, timestamp, step, is_nan"),
                )
            },
        }


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_sqlite_path_writes_what_mlflow_writes(tmp_path):
    results = {}
    for name in ("sqlite", "mlflow"):
        folder = tmp_path / name
        uri = sqlite_uri(folder / "mlflow.db")
        experiment_id = prepare_experiment(uri, "e", artifact_root=folder / "mlruns")
        store = RunStore(uri)
        assert store.sqlite is not None
        if name == "mlflow":
            store.sqlite = None  # force the MlflowClient path on the same kind of store
        run_id = _log_everything(store, experiment_id, folder)
        run = client(uri).get_run(run_id)
        assert run.info.artifact_uri == f"{(folder / 'mlruns' / 'e').as_uri()}/{run_id}/artifacts"
        results[name] = (
            _rows(folder / "mlflow.db", run_id),
            _tree(local_path(run.info.artifact_uri)),
            store.metric_names(run_id),
            store.metric_history(run_id, "m/x"),
            store.list_artifacts(run_id, "eval"),
            store.read_text(run_id, "eval/tree/sub/f.json"),
        )
    assert results["sqlite"] == results["mlflow"]
    rows = results["sqlite"][0]
    assert ("mlflow.runName", "r") in rows["tags"] and ("algorithm", "grpo") in rows["tags"]
    assert ("m/y", 2.0, 1500, 2, 0) in rows["latest_metrics"]
    assert ("m/y", 0.0, 1000, 1, 1) in rows["metrics"]  # NaN is stored as 0 with is_nan
    assert results["sqlite"][3] == [(1, 0.5), (2, 0.75), (0, 0.25)]  # timestamp order


def test_sqlite_path_refuses_what_mlflow_refuses(tmp_path):
    uri = sqlite_uri(tmp_path / "mlflow.db")
    prepare_experiment(uri, "e", artifact_root=tmp_path / "mlruns")
    run_id = start_run(uri, "e", run_name="r", params={"a": 1})
    store = RunStore(uri)
    with pytest.raises(ValueError, match="changing param values"):
        store.log_params(run_id, {"a": "2"})
    client(uri).delete_run(run_id)
    with pytest.raises(ValueError, match="'active' state"):
        store.log_metrics(run_id, {"m": 1.0}, step=0, timestamp_ms=1)


def test_a_stage_logs_without_importing_mlflow_or_the_model_libraries(tmp_path):
    """A pipeline task imports sdar_core.run.stages (and kfp's component modules) and logs
    through StageTracker: none of mlflow, torch, transformers or datasets may load."""
    uri = sqlite_uri(tmp_path / "mlflow.db")
    prepare_experiment(uri, "e", artifact_root=tmp_path / "mlruns")
    run_id = start_run(uri, "e", run_name="r", params={"a": 1})
    (tmp_path / "x.json").write_text("{}")
    code = f"""
import sys
import components, components.evaluate, components.generate_rollouts, components.index_skills
import components.score_teacher, components.sdar_update, components.start_tracking
import sdar_core.run.stages
from sdar_core.run.stages import Tracking
with Tracking({uri!r}, {run_id!r}).stage("index", 0) as tracker:
    tracker.log({{"n_skills": 3}})
    tracker.log_artifact({str(tmp_path / "x.json")!r}, "eval")
from sdar_core.tracking import finish_run
finish_run({uri!r}, {run_id!r})
heavy = ("mlflow", "torch", "transformers", "datasets", "pandas", "sqlalchemy")
print([name for name in heavy if name in sys.modules])
"""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr
    run = client(uri).get_run(run_id)
    assert run.data.metrics["index/n_skills"] == 3.0 and run.info.status == "FINISHED"
    assert [f.path for f in client(uri).list_artifacts(run_id, "eval")] == ["eval/x.json"]


def _store_with_one_run(folder: Path) -> tuple[str, str]:
    uri = sqlite_uri(folder / "mlflow.db")
    prepare_experiment(uri, "e", artifact_root=folder / "mlruns")
    run_id = start_run(uri, "e", run_name="r", params={"a": 1})
    (folder / "first.json").write_text(json.dumps({"n": 1}))
    StageTracker(uri, run_id, stage="eval", round=0).log_artifact(folder / "first.json", "eval")
    return uri, run_id


def _log_from(folder: Path, run_id: str, *, artifact_root: Path | None) -> str:
    """What a run in `folder` does: prepare the experiment, then log into an old and a new run."""
    uri = sqlite_uri(folder / "mlflow.db")
    prepare_experiment(uri, "e", artifact_root=artifact_root)
    (folder / "second.json").write_text("{}")
    new_run = start_run(uri, "e", run_name="r2", params={"a": 1})
    for run in (run_id, new_run):
        StageTracker(uri, run, stage="eval", round=1).log_artifact(folder / "second.json", "eval")
    return new_run


@pytest.mark.parametrize("tagged", [True, False], ids=["store-folder-tag", "older-store"])
def test_a_copied_store_writes_into_the_copy_only(tmp_path, tagged):
    original, copy = tmp_path / "runs" / "embedded", tmp_path / "elsewhere"
    original.mkdir(parents=True)
    uri, run_id = _store_with_one_run(original)
    if not tagged:  # a store made before sdar recorded its folder
        with sqlite3.connect(original / "mlflow.db") as db:
            db.execute("DELETE FROM experiment_tags WHERE key = ?", (STORE_FOLDER_TAG,))
    before = _tree(original / "mlruns")
    shutil.copytree(original, copy)
    new_run = _log_from(copy, run_id, artifact_root=copy / "mlruns")
    assert _tree(original / "mlruns") == before
    copy_client = client(sqlite_uri(copy / "mlflow.db"))
    experiment = copy_client.get_experiment_by_name("e")
    assert experiment.artifact_location == (copy / "mlruns" / "e").as_uri()
    assert experiment.tags[STORE_FOLDER_TAG] == str(copy)
    for run in (run_id, new_run):
        artifacts = local_path(copy_client.get_run(run).info.artifact_uri)
        assert artifacts.is_relative_to(copy) and (artifacts / "eval" / "second.json").is_file()
    # the old run's first artifact is read from the copy
    assert json.loads(RunStore(sqlite_uri(copy / "mlflow.db")).read_text(run_id, "eval/first.json"))
    original_tags = client(uri).get_experiment_by_name("e").tags
    assert original_tags.get(STORE_FOLDER_TAG) == (str(original) if tagged else None)


def test_a_copied_store_is_re_pointed_before_sdar_compare_logs(tmp_path):
    original, copy = tmp_path / "a", tmp_path / "b"
    original.mkdir()
    _, run_id = _store_with_one_run(original)
    before = _tree(original / "mlruns")
    shutil.copytree(original, copy)
    _log_from(copy, run_id, artifact_root=None)  # compare_runs prepares without a root
    assert _tree(original / "mlruns") == before


def test_a_store_shared_by_out_dirs_is_not_re_pointed(tmp_path):
    """`--tracking-uri` naming one store for two out dirs: the artifacts of the experiment stay
    where its first out dir put them (they never lay in the store's folder)."""
    store_dir, first, second = tmp_path / "store", tmp_path / "first", tmp_path / "second"
    store_dir.mkdir()
    uri = sqlite_uri(store_dir / "mlflow.db")
    prepare_experiment(uri, "e", artifact_root=first / "mlruns")
    prepare_experiment(uri, "e", artifact_root=second / "mlruns")
    experiment = client(uri).get_experiment_by_name("e")
    assert experiment.artifact_location == (first / "mlruns" / "e").as_uri()
    assert STORE_FOLDER_TAG not in experiment.tags
