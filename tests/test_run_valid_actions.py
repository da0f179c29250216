"""The valid-action rows of the run's report: per evaluation, the share of its actions the env
accepted, equal to 1 - the evaluation's own invalid_action_rate."""

import pytest

from sdar_core.evaluation.metrics import success_metrics, wilson_interval
from sdar_core.run.report import ceiling_line, valid_action_rows


def evaluation(episodes):
    metrics = success_metrics(episodes, 1, {"pick_and_place": "pick"})
    return {"metrics": metrics, "episodes": episodes}


def episode(task, steps, invalid, won=False):
    return {
        "task_id": task, "run": 0, "task_type": "pick_and_place", "won": won,
        "steps": steps, "invalid_actions": invalid,
    }  # fmt: skip


def test_valid_actions_per_evaluation_in_order():
    evaluations = {
        "base": evaluation([episode("a", 7, 7), episode("b", 7, 6)]),
        "start": evaluation([episode("a", 3, 0, True), episode("b", 7, 1)]),
        "ceiling": evaluation([episode("a", 2, 0, True), episode("b", 2, 0, True)]),
    }
    rows = valid_action_rows(evaluations)
    assert [r["evaluation"] for r in rows] == ["base", "start", "ceiling"]
    for row, results in zip(rows, evaluations.values(), strict=True):
        assert row["valid_actions"] == pytest.approx(
            1 - results["metrics"]["invalid_action_rate"], abs=1e-12
        )
    assert rows[0]["valid/actions"] == "1/14" and rows[1]["valid/actions"] == "9/10"
    assert (rows[1]["low"], rows[1]["high"]) == wilson_interval(9, 10)
    assert rows[2]["valid_actions"] == 1.0 and rows[2]["high"] == pytest.approx(1.0)


def test_an_evaluation_without_actions_has_no_rate():
    (row,) = valid_action_rows({"base": evaluation([episode("a", 0, 0)])})
    assert row["valid_actions"] is None and row["valid/actions"] == "0/0"


def test_stage_seconds_in_the_order_a_run_meets_them():
    from sdar_core.cli_run import stage_seconds_line

    seconds = {"update": 3.4, "eval_ceiling": 9.0, "rollout": 1.0, "eval_base": 20.6, "index": 0.2}
    line = stage_seconds_line(seconds)
    assert line == "index 0, eval_base 21, eval_ceiling 9, rollout 1, update 3"


def test_sdar_run_prints_valid_actions_ceiling_and_stage_seconds(monkeypatch):
    from types import SimpleNamespace

    from typer.testing import CliRunner

    from pipelines.local import LocalRunResult
    from sdar_core import cli_run
    from sdar_core.cli import app

    evaluations = {
        "base": evaluation([episode("a", 7, 7)]),
        "start": evaluation([episode("a", 4, 1, True)]),
        "ceiling": evaluation([episode("a", 3, 0, True)]),
    }
    result = LocalRunResult(
        run_id="r1",
        tracking_uri="sqlite:///unused.db",
        rows=[{"task_type": "all", "base": 0.0, "start": 1.0}],
        setup_seconds=1.0,
        pipeline_seconds=30.0,
        stage_seconds={"sft": 12.0, "eval_base": 5.0},
        valid_actions=valid_action_rows(evaluations),
        ceiling=ceiling_line(evaluations),
    )
    module = SimpleNamespace(run_local=lambda config: result, StageFailed=RuntimeError)
    monkeypatch.setattr(cli_run, "pipelines", lambda name: module)
    out = CliRunner().invoke(app, ["run", "--out-dir", "unused"], terminal_width=200)
    assert out.exit_code == 0, out.output
    assert "valid actions by evaluation" in out.output
    assert "0/7" in out.output and "3/4" in out.output
    assert (
        "start, skills in prompt (teacher's ceiling): held-out success 1.000 (without skills "
        "1.000)" in out.output
    )
    assert "seconds per stage (all rounds): eval_base 5, sft 12" in out.output
