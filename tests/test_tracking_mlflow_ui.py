"""How runs read in MLflow's UI: experiments are marked as model training (MLflow 3 shows an
untagged one as GenAI), and the base model's evaluation is a series of its own (not a second
point at step 0 of eval/...), which `sdar compare` and the report keep apart from the start."""

import json

import pytest

from sdar_core.run.report import history_panels
from sdar_core.run.stages import Tracking, eval_series, evaluate_stage, start_tracking_stage
from sdar_core.tracking import compare_runs
from sdar_core.tracking.store import (
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    client,
    prepare_experiment,
    sqlite_uri,
)


@pytest.fixture(scope="module")
def uri(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mlflow")
    uri = sqlite_uri(folder / "mlflow.db")
    prepare_experiment(uri, "ui", artifact_root=folder / "mlruns")
    return uri


def test_experiments_are_shown_as_model_training(uri):
    mlflow_client = client(uri)
    assert mlflow_client.get_experiment_by_name("ui").tags[EXPERIMENT_KIND_TAG] == (
        "custom_model_development"
    )
    # an experiment made before sdar tagged it gets the tag on the next run
    old_id = mlflow_client.create_experiment("old")
    assert EXPERIMENT_KIND_TAG not in mlflow_client.get_experiment(old_id).tags
    assert prepare_experiment(uri, "old") == old_id
    assert mlflow_client.get_experiment(old_id).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND


def test_base_evaluation_is_its_own_series(uri, tmp_path, monkeypatch):
    successes = {"base": 0.0, "start": 0.5, "final": 0.75}

    def fake_evaluate(model_dir, games_dir, out_path, config, *, skills_index_dir=None):
        label = model_dir  # the fake reads the checkpoint's name as its label
        results = {"config": {}, "metrics": {"success/all": successes[label]}, "episodes": []}
        with open(out_path, "w") as f:
            json.dump(results, f)
        return results

    monkeypatch.setattr("sdar_core.evaluation.memo.evaluate", fake_evaluate)  # the stage calls it
    monkeypatch.setattr("sdar_core.run.report.log_evaluation_artifacts", lambda *a, **k: None)
    inputs = {"model_uri": "model", "data_uri": "data"}
    params = {"algorithm": "grpo", "rollout_config": {"seed": 0}}
    run_id = start_tracking_stage(uri, "ui", "base-series", params, inputs=inputs, profile="local")
    tracking = Tracking(uri, run_id)
    for label, round in (("base", 0), ("start", 0), ("final", 2)):
        evaluate_stage(
            label, "games", str(tmp_path / f"{label}.json"), "{}", algorithm="grpo",
            label=label, round=round, tracking=tracking,
        )  # fmt: skip
    mlflow_client = client(uri)

    def points(key):
        return [(p.step, p.value) for p in mlflow_client.get_metric_history(run_id, key)]

    assert points("eval/success/all") == [(0, 0.5), (2, 0.75)]
    assert points("eval_base/success/all") == [(0, 0.0)]
    assert eval_series("base") == "eval_base" and eval_series("start") == "eval"
    (row,) = compare_runs(uri, tmp_path / "cmp", run_ids=[run_id]).rows
    assert (row["start_success"], row["final_success"]) == (0.5, 0.75)
    success_panel = history_panels(["eval/success/all", "eval_base/success/all"])["success"]
    assert "eval_base/success/all" in success_panel.values()
