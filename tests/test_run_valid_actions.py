"""The valid-action rows of the run's report: per evaluation, the share of its actions the env
accepted, equal to 1 - the evaluation's own invalid_action_rate."""

import pytest

from sdar_core.evaluation.metrics import success_metrics, wilson_interval
from sdar_core.run.report import valid_action_rows


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
    assert line == "index 0, eval_base 21, rollout 1, update 3, eval_ceiling 9"
