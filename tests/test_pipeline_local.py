"""A small end-to-end embedded run (tiny model, five games, R = 2) under kfp.local, and the MLflow
run it leaves: parameters once, every stage's metrics with step = round, durations, the
evaluation JSONs and plots; then `sdar compare` on it. About 2-3 minutes on 2 CPU cores (each
of the 12 tasks runs in a process forked from a warm server: pipelines/warm_tasks.py)."""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

from conftest import tiny_run_config  # noqa: E402

from pipelines.local import count_tasks, options_for, run_local  # noqa: E402
from sdar_core.tracking import compare_runs  # noqa: E402
from sdar_core.tracking.store import client  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, tiny_model_dir):
    out = tmp_path_factory.mktemp("embedded")
    config = tiny_run_config(
        out, tiny_model_dir, algorithm="sdar", rounds=2, n_train_games=3, n_valid_games=2
    )
    return config, run_local(config)


def test_run_logs_every_stage_per_round(local_run):
    config, result = local_run
    mlflow_client = client(result.tracking_uri)
    run = mlflow_client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["algorithm"] == "sdar"
    assert run.data.params["rounds"] == "2"
    assert run.data.params["rollout_config.group_size"] == "2"
    assert run.data.params["model.uri"] == str((config.out_dir / "model").resolve())
    assert len(run.data.params["model.sha256"]) == len(run.data.params["data.sha256"]) == 64
    assert run.data.params["data.uri"] == str((config.out_dir / "games").resolve())
    tags = run.data.tags
    assert (tags["algorithm"], tags["env"], tags["seed"], tags["preset"]) == (
        "sdar", "alfworld", "0", "local"
    )  # fmt: skip

    def steps(name: str) -> list[int]:
        return sorted(p.step for p in mlflow_client.get_metric_history(result.run_id, name))

    for name in (
        "rollout/success_rate",
        "rollout/mean_episode_reward",
        "rollout/invalid_action_rate",
        "rollout/generated_tokens_per_second",
        "teacher/teacher_mean_gap",
        "update/pg_loss",
        "update/kl_loss",
        "update/sdar/gate_mean",
        "update/sdar/gate_active_ratio",
        "update/teacher_gap",
        "update/tokens_per_s",
        "rollout/duration_s",
        "teacher/duration_s",
        "update/duration_s",
    ):
        assert steps(name) == [0, 1], name
    assert steps("eval/success/all") == [0, 2]  # start checkpoint and after round 2
    # the teacher saw skills (a degenerate teacher == student would make the gap exactly 0)
    assert run.data.metrics["teacher/teacher_mean_skill_tokens"] > 0
    assert steps("index/duration_s") == [0]
    assert set(result.stage_seconds) == {"index", "rollout", "teacher", "update", "eval"}
    assert result.n_tasks == count_tasks(options_for(config)) == 12
    assert result.pipeline_seconds > sum(result.stage_seconds.values())


def test_run_holds_evaluations_plots_and_the_success_table(local_run):
    _, result = local_run
    mlflow_client = client(result.tracking_uri)
    names = {a.path for a in mlflow_client.list_artifacts(result.run_id, "eval")}
    assert names == {
        "eval/start.json",
        "eval/final.json",
        "eval/success_by_task_type.png",
        "eval/history.png",
    }
    local = mlflow_client.download_artifacts(result.run_id, "eval/final.json")
    final = json.loads(Path(local).read_text())
    assert len(final["episodes"]) == 2  # both valid_seen games
    by_label = {row["task_type"]: row for row in result.rows}
    assert by_label["all"]["final"] == final["metrics"]["success/all"]
    assert set(by_label) - {"all"} == {
        k.removeprefix("success/")
        for k in final["metrics"]
        if k.startswith("success/") and "_" not in k.removeprefix("success/")
    } - {"all"}


def test_the_checkpoint_was_trained_each_round(local_run):
    config, result = local_run
    updates = client(result.tracking_uri).get_metric_history(result.run_id, "update/steps")
    assert [p.value for p in sorted(updates, key=lambda p: p.step)] == [1.0, 1.0]


def test_compare_on_the_embedded_run(local_run, tmp_path):
    config, result = local_run
    out = compare_runs(result.tracking_uri, tmp_path, experiment=config.experiment)
    assert [row["algorithm"] for row in out.rows] == ["sdar"]
    assert (tmp_path / "gate_statistics.png").is_file()
