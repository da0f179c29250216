"""The extra evaluations end to end under kfp.local (tiny model, R = 2, GRPO): with eval_every=1
the checkpoint of round 1 is evaluated too, so `eval/success/all` holds rounds 0, 1, 2 and the
replicate's curves read all three; with the ceiling the start checkpoint is evaluated once more
with skills in its prompt, into `eval_ceiling/...`, and the success table has its column. About
two minutes on 2 CPU cores (12 tasks, each a fresh Python process)."""

import json
from pathlib import Path

import pytest
from conftest import tiny_run_config

from pipelines.local import count_tasks, options_for, run_local
from sdar_core.run.replicate import run_histories
from sdar_core.run.replicate_table import RunOutcome, curves, rounds_to_level
from sdar_core.tracking.store import client, run_store

pytestmark = pytest.mark.slow


def test_eval_every_and_the_ceiling_in_a_real_run(tmp_path, tiny_model_dir):
    config = tiny_run_config(
        tmp_path, tiny_model_dir, algorithm="grpo", rounds=2, eval_every=1, ceiling=True
    )
    result = run_local(config)
    mlflow_client = client(result.tracking_uri)

    def steps(name: str) -> list[int]:
        return sorted(p.step for p in mlflow_client.get_metric_history(result.run_id, name))

    assert steps("eval/success/all") == [0, 1, 2]  # start, round 1's checkpoint, final
    assert steps("eval_ceiling/success/all") == [0]
    assert steps("eval/duration_s") == [0, 1, 2] and steps("eval_ceiling/duration_s") == [0]
    names = {a.path for a in mlflow_client.list_artifacts(result.run_id, "eval")}
    assert {"eval/start.json", "eval/ceiling.json", "eval/round-1.json", "eval/final.json"} <= names
    saved = {}
    for label in ("start", "ceiling"):
        local = mlflow_client.download_artifacts(result.run_id, f"eval/{label}.json", tmp_path)
        saved[label] = json.loads(Path(local).read_text())
    assert saved["ceiling"]["config"]["student_sees_skills"] is True
    assert saved["start"]["config"]["student_sees_skills"] is False
    assert all(e["skills"] for e in saved["ceiling"]["episodes"])  # skills were in its prompts
    (row,) = [r for r in result.rows if r["task_type"] == "all"]
    assert list(row) == ["task_type", "start", "ceiling", "round-1", "final"]
    ceiling = saved["ceiling"]["metrics"]["success/all"]
    assert result.ceiling.startswith("start, skills in prompt (teacher's ceiling): held-out")
    assert f"{ceiling:.3f}" in result.ceiling
    assert result.n_tasks == count_tasks(options_for(config)) == 12
    assert set(result.stage_seconds) == {"index", "rollout", "update", "eval", "eval_ceiling"}

    # the replicate reads every evaluated round into its curves and rounds to a level
    histories = run_histories(run_store(result.tracking_uri), result.run_id)
    assert sorted(histories["eval/success/all"]) == [0, 1, 2]
    outcome = RunOutcome("grpo", 0, result.run_id, 0.0, 0.0, 1.0, histories)
    (points,) = curves([outcome], ["grpo"])["eval/success/all"].values()
    assert [p["round"] for p in points] == [0, 1, 2]
    # a level first met at round 1 (the start is below it) is reported at round 1
    lifted = {"eval/success/all": {0: 0.25, 1: 0.5, 2: 0.5}} | {
        k: v for k, v in histories.items() if k != "eval/success/all"
    }
    (reached,) = rounds_to_level([RunOutcome("grpo", 0, "r", 0.0, 0.0, 1.0, lifted)], ["grpo"],
                                 level=0.5)  # fmt: skip
    assert reached["mean_round"] == 1
