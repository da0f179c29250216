"""`sdar eval` reproduces the pipeline's own evaluation: given the run's settings (its evaluation
JSON via --config, or the same settings as flags), it writes the same results as the pipeline's
evaluation stage on the same checkpoint and games."""

from __future__ import annotations

import json

import pytest

from sdar_core.cli import main
from sdar_core.run import RunConfig, stage_config_json
from sdar_core.run.stages import Tracking, evaluate_stage, start_tracking_stage

# the miniature's evaluation settings (sampled at 0.4, twice per game, history 1), shortened
EVAL = {"max_steps": 3, "history_length": 1, "max_new_tokens": 8, "decoding": "sample",
        "temperature": 0.4, "k": 2, "show_progress": False}  # fmt: skip


def _sdar(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0


def _episodes(results: dict) -> list:
    return [(e["task_id"], e["run"], e["won"], e["steps"]) for e in results["episodes"]]


@pytest.mark.slow  # three evaluations on the engine: ~60 s on 2 cores
@pytest.mark.transformers
def test_sdar_eval_with_the_pipelines_settings_equals_the_pipelines_evaluation(
    tiny_model_dir, alfworld_games_dir, tmp_path, capsys
):
    from sdar_core.tracking.store import sqlite_uri

    config = RunConfig(out_dir=tmp_path, world="alfworld", eval=EVAL)
    assert config.eval.history_length == 1 and config.eval.history_length != 2  # not the default
    uri = sqlite_uri(tmp_path / "mlflow.db")
    inputs = {"model_uri": "model", "data_uri": "data"}
    run_id = start_tracking_stage(
        uri, "eval-cli", "eval-cli", {"algorithm": "grpo"}, inputs=inputs, profile="local"
    )
    stage_out = tmp_path / "start.json"
    evaluate_stage(
        str(tiny_model_dir), str(alfworld_games_dir), str(stage_out),
        stage_config_json(config)["eval_config"], algorithm="grpo", label="start", round=0,
        tracking=Tracking(uri, run_id),
    )  # fmt: skip
    pipeline = json.loads(stage_out.read_text())
    common = ["--model", str(tiny_model_dir), "--games", str(alfworld_games_dir)]

    from_file = tmp_path / "from_file.json"
    _sdar(["eval", str(from_file), "--config", str(stage_out), *common])
    flags = ["--history-length", "1", "--max-steps", "3", "--max-new-tokens", "8",
             "--decoding", "sample", "--temperature", "0.4", "--k", "2",
             "--no-keep-texts"]  # fmt: skip
    from_flags = tmp_path / "from_flags.json"
    _sdar(["eval", str(from_flags), *flags, *common])
    printed = capsys.readouterr().out
    assert f"success/all: {pipeline['metrics']['success/all']:.4f}" in printed

    for path in (from_file, from_flags):
        results = json.loads(path.read_text())
        assert results["metrics"] == pipeline["metrics"]
        assert _episodes(results) == _episodes(pipeline)
    # the same settings: the same sampled texts, turn by turn
    assert json.loads(from_file.read_text())["episodes"] == pipeline["episodes"]
    assert json.loads(from_file.read_text())["config"] == pipeline["config"]
    flagged = json.loads(from_flags.read_text())["config"]
    assert flagged == pipeline["config"] | {"keep_texts": False, "show_progress": True}


def test_eval_settings_take_the_file_then_the_flags(tmp_path):
    from sdar_core.cli_eval import eval_settings
    from sdar_core.errors import ConfigError

    path = tmp_path / "eval.json"
    path.write_text(json.dumps({"history_length": 1, "max_steps": 7, "k": 2,
                                "decoding": "sample"}))  # fmt: skip
    settings = eval_settings(path, {"max_steps": 5}, skills_index=None)
    assert (settings.history_length, settings.max_steps, settings.k) == (1, 5, 2)
    assert settings.split == "valid_seen" and not settings.student_sees_skills
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"config": settings.model_dump(mode="json"), "metrics": {}}))
    assert eval_settings(results, {}, skills_index=None) == settings
    path.write_text(json.dumps({"history_lenght": 1}))
    with pytest.raises(ConfigError, match="history_lenght"):
        eval_settings(path, {}, skills_index=None)
