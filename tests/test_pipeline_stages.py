"""The stage functions' own logic: config JSON parsing, the update's run length and reference, the
embedded run's settings, the evaluation stage's skills (from the preset, index passed through), and
refusals that say how to fix them."""

import json

import pytest

from sdar_core.errors import ArtifactError, ConfigError
from sdar_core.rollout import RolloutConfig
from sdar_core.run import RunConfig, stage_config_json
from sdar_core.run.config import STAGE_CONFIGS
from sdar_core.run.stages import Tracking, evaluate_stage, parse_config, update_stage
from sdar_core.train import UpdateConfig


def test_parse_config_applies_overrides_and_validates():
    config = parse_config(RolloutConfig, '{"n_tasks": 3, "group_size": 2}', seed=7)
    assert (config.n_tasks, config.group_size, config.seed) == (3, 2, 7)
    assert parse_config(RolloutConfig, "") == RolloutConfig()
    with pytest.raises(ConfigError, match="not valid JSON"):
        parse_config(RolloutConfig, "{n_tasks: 3}")
    with pytest.raises(ConfigError, match="must be an object"):
        parse_config(RolloutConfig, "[1]")
    with pytest.raises(ConfigError, match="(?s)invalid RolloutConfig.*group_size must be >= 1"):
        parse_config(RolloutConfig, '{"group_size": 0}')
    with pytest.raises(ConfigError, match="(?s)invalid UpdateConfig.*learning_rate"):
        parse_config(UpdateConfig, '{"learning_rate": 1.0}')


def test_update_stage_sets_the_runs_length_and_wires_the_reference(tmp_path, monkeypatch):
    calls = []

    def fake_update(model_dir, trajectories_dir, out_dir, config, *, ref_model_dir):
        calls.append((config, ref_model_dir))
        return {"loss": 0.0}

    monkeypatch.setattr("sdar_core.train.sdar_update", fake_update)
    tracking = Tracking(f"sqlite:///{tmp_path}/m.db", "run")
    monkeypatch.setattr(Tracking, "stage", lambda self, stage, round: _NullTracker())
    update_stage(
        "m", "start", "t", "o", "{}", algorithm="rlsd", round=1, total_rounds=5, num_gpus=1,
        tracking=tracking,
    )  # fmt: skip
    config, ref = calls[0]
    assert (config.algorithm, config.total_iterations, ref) == ("rlsd", 5, "start")
    update_stage(
        "m", "start", "t", "o", '{"total_iterations": 9}', algorithm="grpo", round=1,
        total_rounds=5, num_gpus=1, tracking=tracking,
    )  # fmt: skip
    assert calls[1][0].total_iterations == 9  # an explicit setting wins


class _NullTracker:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def log(self, metrics):
        return metrics


def test_stage_config_json_round_trips_every_stage():
    config = RunConfig(rounds=3).with_seed(4)
    params = stage_config_json(config)
    assert set(params) == set(STAGE_CONFIGS)
    for param, field in STAGE_CONFIGS.items():
        stage = getattr(config, field)
        assert type(stage).model_validate_json(params[param]) == stage
    assert config.rollout.seed == config.update.seed == config.sft.seed == 4
    assert config.eval.seed == 0  # the evaluation set and its decoding stay fixed


def test_run_config_refuses_too_few_games():
    # pydantic wraps the ConfigError raised in the validator; the fix stays in the message
    with pytest.raises(ValueError, match="raise n_train_games"):
        RunConfig(n_train_games=2)
    with pytest.raises(ValueError, match="sdar"):
        RunConfig(algorithm="ppo")


def test_stage_sets_skills_from_the_preset_and_passes_the_index(tmp_path, monkeypatch):
    calls = []

    def fake_evaluate(model_dir, games_dir, out_path, config, *, skills_index_dir=None):
        calls.append((config.student_sees_skills, skills_index_dir))
        raise RuntimeError("stop after the call")

    monkeypatch.setattr("sdar_core.evaluation.memo.evaluate", fake_evaluate)  # the stage calls it
    tracking = Tracking(f"sqlite:///{tmp_path / 'mlflow.db'}", "no-run")
    monkeypatch.setattr(Tracking, "stage", lambda self, stage, round: _NullTracker())
    for algorithm in ("skill_prompt", "skill_grpo", "grpo"):
        with pytest.raises(RuntimeError, match="stop after the call"):
            evaluate_stage(
                str(tmp_path),
                str(tmp_path),
                str(tmp_path / "r.json"),
                "{}",
                algorithm=algorithm,
                label="start",
                round=0,
                tracking=tracking,
                index_dir=str(tmp_path / "index"),
            )
    index = str(tmp_path / "index")
    assert calls == [(True, index), (True, index), (False, index)]


def test_update_with_several_gpus_needs_deepspeed(tmp_path):
    from sdar_core.run.stages import launch_update

    with pytest.raises(ConfigError, match="set backend to 'deepspeed'"):
        launch_update(tmp_path, tmp_path, tmp_path / "out", UpdateConfig(), 2)


def test_sdar_run_takes_the_config_file_and_only_the_flags_given(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import pipelines.local
    from sdar_core.cli import app

    seen = []

    def fake_run_local(config):
        seen.append(config)
        rows = [{"task_type": "all", "start": 0.0, "final": 0.5}]
        uri = f"sqlite:///{tmp_path}/x.db"
        return pipelines.local.LocalRunResult("rid", uri, rows, 1.0, 10.0, {}, 5)

    monkeypatch.setattr(pipelines.local, "run_local", fake_run_local)
    config_file = tmp_path / "run.json"
    config_file.write_text(json.dumps({"n_train_games": 5, "rounds": 3, "rollout": {"n_tasks": 2}}))
    result = CliRunner().invoke(
        app, ["run", "--config", str(config_file), "--rounds", "1", "--seed", "9"]
    )
    assert result.exit_code == 0, result.output
    (config,) = seen
    assert (config.n_train_games, config.rounds, config.rollout.n_tasks) == (5, 1, 2)
    assert config.n_valid_games == 32 and config.rollout.seed == config.update.seed == 9
    assert "MLflow run id: rid" in result.output
    assert f"mlflow ui --backend-store-uri sqlite:///{tmp_path}/x.db" in result.output


def test_start_tracking_logs_model_and_data_identity_and_tags(tmp_path, tiny_model_dir):
    from sdar_core.run.identity import input_identity, tree_sha256
    from sdar_core.run.stages import start_tracking_stage
    from sdar_core.tracking.store import client, sqlite_uri

    data = tmp_path / "data"
    (data / "train").mkdir(parents=True)
    (data / "train" / "game.json").write_text("{}")
    uri = sqlite_uri(tmp_path / "mlflow.db")
    params = {"algorithm": "grpo", "env": "alfworld", "rounds": 2, "rollout_config": {"seed": 3}}
    inputs = input_identity(str(tiny_model_dir), str(data))
    run_id = start_tracking_stage(uri, "ids", "r", params, inputs=inputs, profile="local")
    run = client(uri).get_run(run_id)
    assert run.data.params["model.uri"] == str(tiny_model_dir)
    assert run.data.params["model.sha256"] == tree_sha256(tiny_model_dir)
    assert run.data.params["data.uri"] == str(data)
    assert run.data.params["data.sha256"] == tree_sha256(data)
    tags = run.data.tags
    assert (tags["algorithm"], tags["env"], tags["seed"], tags["preset"]) == (
        "grpo", "alfworld", "3", "local"
    )  # fmt: skip
    remote = {"model_uri": "s3://b/m", "data_uri": "s3://b/g"}
    run_id = start_tracking_stage(uri, "ids", "r", params, inputs=remote, profile="cluster")
    assert client(uri).get_run(run_id).data.params["model.sha256"] == "unknown"


def test_tree_sha256_follows_content_not_place(tmp_path):
    from sdar_core.run.identity import tree_sha256

    for name in ("a", "b"):
        (tmp_path / name / "sub").mkdir(parents=True)
        (tmp_path / name / "sub" / "x.txt").write_text("same")
    (tmp_path / "b" / ".cache").write_text("ignored")
    assert tree_sha256(tmp_path / "a") == tree_sha256(tmp_path / "b")
    (tmp_path / "b" / "sub" / "x.txt").write_text("changed")
    assert tree_sha256(tmp_path / "a") != tree_sha256(tmp_path / "b")
    assert tree_sha256("owner/model") is None


def test_run_config_takes_a_model_and_data(tmp_path, tiny_model_dir, alfworld_games_dir):
    from sdar_core.run import prepare_inputs

    config = RunConfig(
        out_dir=tmp_path, model=str(tiny_model_dir), data=alfworld_games_dir, n_train_games=1
    )
    assert config.eval.n_tasks == config.n_valid_games == 32  # given data: n_valid_games of it
    prepared = prepare_inputs(config)
    assert prepared.model_dir == tiny_model_dir.resolve()
    assert prepared.games_dir == alfworld_games_dir.resolve()
    assert not (tmp_path / "model").exists() and not (tmp_path / "games").exists()
    with pytest.raises(ArtifactError, match="does not exist"):
        prepare_inputs(RunConfig(out_dir=tmp_path, data=tmp_path / "nope"))
