"""LoRA through the embedded pipeline: every update writes only an adapter that names the run's
starting checkpoint as its base, and every later stage (rollouts, teacher, evaluation) loads it
with that checkpoint among its inputs (`base_model`; the update's `reference`), which is what
lets the same graph run on a cluster, where each stage sees only its own inputs
(tests/test_pipeline_compile.py checks the compiled wiring). About 2-3 minutes on 2 CPU cores."""

import json

import pytest
from conftest import tiny_run_config

from pipelines.local import run_local
from sdar_core.tracking.store import client
from sdar_core.train import UpdateConfig

pytestmark = pytest.mark.slow


def test_a_lora_run_trains_adapters_on_the_starting_checkpoint(tmp_path, tiny_model_dir):
    config = tiny_run_config(
        tmp_path,
        tiny_model_dir,
        algorithm="sdar",
        rounds=2,
        n_train_games=3,
        n_valid_games=2,
        update=UpdateConfig(lora=True, lr=1e-3, mini_batch_size=32),
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


def test_a_lora_warm_start_becomes_the_start_model_of_the_lora_rounds(tmp_path, tiny_model_dir):
    """The warm start's adapter is merged (full weights): the rounds' adapters name that merged
    checkpoint as their base, which is also every update's KL reference."""
    from sdar_core.train import SFTConfig

    config = tiny_run_config(
        tmp_path,
        tiny_model_dir,
        algorithm="grpo",
        rounds=2,
        n_train_games=2,
        n_valid_games=1,
        warm_start=True,
        sft=SFTConfig(lora=True, n_tasks=1, max_steps=20, think_words=0, epochs=1, lr=1e-3),
        update=UpdateConfig(lora=True, lr=1e-3, mini_batch_size=32),
    )
    result = run_local(config)
    assert client(result.tracking_uri).get_run(result.run_id).info.status == "FINISHED"
    root = tmp_path / "pipeline_root"
    merged = [p.parent for p in root.rglob("lora_adapter") if p.is_dir()]
    assert len(merged) == 1 and (merged[0] / "model.safetensors").is_file()
    adapters = [a for a in root.rglob("adapter_config.json") if a.parent.name != "lora_adapter"]
    assert len(adapters) == 2  # one per round's update
    for adapter in adapters:
        base = json.loads(adapter.read_text())["base_model_name_or_path"]
        assert merged[0].samefile(base)
