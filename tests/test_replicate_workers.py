"""`sdar replicate` with two worker processes through the real pipeline (kfp.local): two training
runs in one out-dir at once, each in its own process (pipelines/run_worker.py), children of one
MLflow parent run, with their console output kept per run; both reuse the warm start's
evaluation of their start checkpoint (sdar_core/evaluation/memo.py). A few minutes on 2 cores."""

import json

import pytest
from conftest import tiny_run_config

from pipelines.replicate import replicate_local, threads_per_worker
from sdar_core.run.arms import arms_for
from sdar_core.tracking.store import client

pytestmark = pytest.mark.slow


def test_threads_are_shared_out():
    assert threads_per_worker(2, cores=2) == 1
    assert threads_per_worker(3, cores=16) == 5
    assert threads_per_worker(4, cores=2) == 1


def test_two_training_runs_at_once(tmp_path, tiny_model_dir):
    base = tiny_run_config(tmp_path, tiny_model_dir, rounds=1, eval_every=None)
    lines: list[str] = []
    result = replicate_local(
        base, arms=arms_for(("grpo",)), seeds=(0, 1), level=0.8, on_run=lines.append, workers=2
    )
    assert [(r.arm, r.seed) for r in result.runs] == [("grpo", 0), ("grpo", 1)]
    assert len({r.run_id for r in result.runs}) == 2
    mlflow_client = client(base.resolved_tracking_uri())
    for run in result.runs:
        found = mlflow_client.get_run(run.run_id)
        assert found.info.status == "FINISHED"
        assert found.data.tags["mlflow.parentRunId"] == result.parent_run_id
        assert found.data.params["algorithm"] == "grpo"
    assert mlflow_client.get_run(result.parent_run_id).info.status == "FINISHED"
    outputs = sorted(p.name.split("-")[1:3] for p in (tmp_path / "logs").glob("worker-*.out"))
    assert outputs == [["grpo", "seed0"], ["grpo", "seed1"], ["vanilla", "seed0"]]  # + warm start
    assert any("grpo, seed 1: start" in line for line in lines)
    assert "went 2 at a time" in (result.out_dir / "replicate.md").read_text()
    # the warm start evaluated the shared start checkpoint (and the base model); the runs each
    # evaluated their final checkpoint and reused the start's: the stored one predates them
    memo = {p: json.loads(p.read_text())["model_dir"] for p in (tmp_path / "eval_memo").iterdir()}
    (start,) = [p for p, model in memo.items() if model.endswith("/warmstart-sft/checkpoint")]
    assert sorted(model.removeprefix(str(tmp_path)).split("/")[-2] for model in memo.values()) == [
        "",
        "sdar-update",
        "sdar-update",
        "warmstart-sft",
    ]  # fmt: skip (the base model is <out-dir>/model)
    for run_root in (tmp_path / "pipeline_root").glob("sdar-alfworld-grpo-*"):
        started = (run_root / "start-tracking").stat().st_mtime_ns
        assert start.stat().st_mtime_ns < started
        reused = json.loads((run_root / "evaluate" / "results").read_text())
        assert reused["episodes"] == json.loads(start.read_text())["episodes"]
