"""`sdar replicate` with two worker processes through the real pipeline (kfp.local): two training
runs in one out-dir at once, each in a process of its own (pipelines/run_worker.py, which keeps
its two processes for all three runs), children of one MLflow parent run, with their console
output kept per run; the warm start runs alone on every core; a later run reuses the start
evaluation an earlier one stored (sdar_core/evaluation/memo.py). A few minutes on 2 cores."""

import json
import re

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
        base, arms=arms_for(("grpo",)), seeds=(0, 1, 2), level=0.8, on_run=lines.append, workers=2
    )
    assert [(r.arm, r.seed) for r in result.runs] == [("grpo", 0), ("grpo", 1), ("grpo", 2)]
    assert len({r.run_id for r in result.runs}) == 3
    mlflow_client = client(base.resolved_tracking_uri())
    for run in result.runs:
        found = mlflow_client.get_run(run.run_id)
        assert found.info.status == "FINISHED"
        assert found.data.tags["mlflow.parentRunId"] == result.parent_run_id
        assert found.data.params["algorithm"] == "grpo"
    assert mlflow_client.get_run(result.parent_run_id).info.status == "FINISHED"
    outputs = sorted(p.name.split("-")[1:3] for p in (tmp_path / "logs").glob("worker-*.out"))
    assert outputs == [["grpo", f"seed{seed}"] for seed in range(3)] + [["vanilla", "seed0"]]
    assert any("grpo, seed 1: start" in line for line in lines)
    # two long-lived processes served the three runs (RunWorkers): one of them ran two
    served = [
        re.match(r"worker process (\d+), its run (\d+)", p.read_text()).groups()
        for p in (tmp_path / "logs").glob("worker-grpo-*.out")
    ]
    assert len({pid for pid, _ in served}) == 2
    assert sorted(k for _, k in served) == ["1", "1", "2"]
    assert "went 2 at a time" in (result.out_dir / "replicate.md").read_text()

    # the warm start ran alone on every core, the training runs on a share each; the third run
    # reused the start evaluation that an earlier run on its thread count stored
    memo = [json.loads(p.read_text()) | {"path": p} for p in (tmp_path / "eval_memo").iterdir()]
    (base_eval,) = [m for m in memo if m["results"]["model_dir"] == str(tmp_path / "model")]
    assert base_eval["inputs"]["threads"] == threads_per_worker(1)  # only the warm start's
    starts = [m for m in memo if m["results"]["model_dir"].endswith("/warmstart-sft/checkpoint")]
    threads = {threads_per_worker(1), threads_per_worker(2)}
    assert sorted(m["inputs"]["threads"] for m in starts) == sorted(threads)
    (shared,) = [m for m in starts if m["inputs"]["threads"] == threads_per_worker(2)]
    runs = sorted(
        (tmp_path / "pipeline_root").glob("sdar-alfworld-grpo-*"),
        key=lambda run: (run / "start-tracking").stat().st_mtime_ns,
    )
    third = runs[-1]
    assert shared["path"].stat().st_mtime_ns < (third / "start-tracking").stat().st_mtime_ns
    reused = json.loads((third / "evaluate" / "results").read_text())
    assert reused["episodes"] == shared["results"]["episodes"]
