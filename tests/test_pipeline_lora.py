"""LoRA through the embedded pipeline: every update writes only an adapter that names the run's
starting checkpoint as its base, and every later stage (rollouts, teacher, evaluation) loads it
with that checkpoint among its inputs (`base_model`; the update's `reference`), which is what
lets the same graph run on a cluster, where each stage sees only its own inputs
(tests/test_pipeline_compile.py checks the compiled wiring). About 2-3 minutes on 2 CPU cores."""

import json
import shutil

import pytest

from pipelines.local import run_local
from sdar_core.evaluation import EvalConfig
from sdar_core.rollout import RolloutConfig
from sdar_core.run import RunConfig
from sdar_core.tracking.store import client
from sdar_core.train import UpdateConfig

pytestmark = pytest.mark.slow


def test_a_lora_run_trains_adapters_on_the_starting_checkpoint(tmp_path, tiny_model_dir):
    shutil.copytree(tiny_model_dir, tmp_path / "model")  # reused by prepare_inputs
    config = RunConfig(
        out_dir=tmp_path,
        world="alfworld",
        algorithm="sdar",
        rounds=2,
        n_train_games=3,
        n_valid_games=2,
        rollout=RolloutConfig(
            n_tasks=1, group_size=2, max_steps=2, max_new_tokens=8, show_progress=False
        ),
        update=UpdateConfig(lora=True, lr=1e-3, mini_batch_size=32),
        eval=EvalConfig(max_steps=2, max_new_tokens=8, show_progress=False),
    )
    result = run_local(config)
    mlflow_client = client(result.tracking_uri)
    assert mlflow_client.get_run(result.run_id).info.status == "FINISHED"
    steps = mlflow_client.get_metric_history(result.run_id, "rollout/success_rate")
    assert sorted(p.step for p in steps) == [0, 1]  # round 1 played with round 0's adapter
    adapters = sorted((tmp_path / "pipeline_root").rglob("adapter_config.json"))
    assert len(adapters) == 2  # one per round's update, and no full weights beside them
    for adapter in adapters:
        assert not (adapter.parent / "model.safetensors").exists()
        base = json.loads(adapter.read_text())["base_model_name_or_path"]
        assert (tmp_path / "model").resolve().samefile(base)  # the imported starting model
