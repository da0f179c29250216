"""LoRA through peft: only adapter weights change, the checkpoint holds only the adapter, the
reference (adapter disabled) is exactly the base model, and merging gives the adapter model's
outputs."""

from __future__ import annotations

import pytest
import torch

from sdar_core.algos import get_algorithm
from sdar_core.errors import ConfigError
from sdar_core.evaluation import EvalConfig, load_eval_model
from sdar_core.models import load_model
from sdar_core.rollout import read_trajectories
from sdar_core.train import (
    PolicyHead,
    UpdateConfig,
    build_rl_samples,
    collate,
    load_policy,
    reference_mode,
    sdar_update,
)


@pytest.fixture(scope="module")
def scored(make_scored_trajectories, tmp_path_factory):
    return make_scored_trajectories(tmp_path_factory.mktemp("lora_scored") / "t", seed=1)


@pytest.fixture(scope="module")
def adapter(tiny_model_dir, scored, tmp_path_factory):
    out = tmp_path_factory.mktemp("lora") / "adapter"
    config = UpdateConfig(lora=True, lr=1e-2, epochs=2, mini_batch_size=4, weight_decay=0.0)
    metrics = sdar_update(tiny_model_dir, scored, out, config)
    return out, metrics


def _batch(tiny_model_dir, scored):
    rows = read_trajectories(scored, require_teacher=True)
    samples, _ = build_rl_samples(rows, get_algorithm("sdar"))
    return collate(samples, pad_id=0, device="cpu")


def test_checkpoint_holds_only_the_adapter(adapter):
    out, metrics = adapter
    names = {p.name for p in out.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "metrics.json"} <= names
    assert "model.safetensors" not in names
    assert metrics["skipped_steps"] == 0


def test_only_adapter_weights_change(tiny_model_dir, adapter):
    out, _ = adapter
    base = load_model(tiny_model_dir, dtype="float32").state_dict()
    trained = load_policy(out, UpdateConfig(lora=True))
    lora_changed = 0
    for name, value in trained.state_dict().items():
        if "lora_" in name:
            lora_changed += "lora_B" in name and bool(value.abs().max() > 0)  # B starts at 0
            continue
        base_name = name.replace("base_model.model.", "").replace(".base_layer", "")
        assert torch.equal(value, base[base_name]), name
    assert lora_changed == 14  # q/k/v/o/gate/up/down in each of the 2 layers


def test_reference_is_the_base_and_merge_keeps_outputs(tiny_model_dir, scored, adapter):
    out, _ = adapter
    batch = _batch(tiny_model_dir, scored)
    head = PolicyHead(
        load_policy(out, UpdateConfig(lora=True)), temperature=1.0, chunk_size=None
    ).eval()
    plain = PolicyHead(
        load_model(tiny_model_dir, dtype="float32"), temperature=1.0, chunk_size=None
    ).eval()
    merged_model, _ = load_eval_model(out, EvalConfig())
    merged = PolicyHead(merged_model, temperature=1.0, chunk_size=None).eval()
    with torch.no_grad():
        adapted = head(batch)  # (B, T)
        with reference_mode(head):
            reference = head(batch)
        base, after_merge = plain(batch), merged(batch)
    torch.testing.assert_close(reference, base, rtol=0, atol=0)
    assert (adapted - base).abs().max() > 1e-3  # the adapter changed the policy
    torch.testing.assert_close(after_merge, adapted, rtol=1e-5, atol=1e-5)


def test_adapter_training_continues_and_needs_lora_flag(tiny_model_dir, scored, adapter, tmp_path):
    out, _ = adapter
    with pytest.raises(ConfigError, match="lora=True"):
        load_policy(out, UpdateConfig())
    again = sdar_update(out, scored, tmp_path / "again", UpdateConfig(lora=True, lr=1e-3))
    assert again["skipped_steps"] == 0
    assert (tmp_path / "again" / "adapter_model.safetensors").is_file()


def test_inference_stages_take_a_lora_checkpoint(tiny_model_dir, adapter, tmp_path):
    """load_model merges a LoRA checkpoint into its base; the hf rollout backend samples the same
    tokens and log-probs from (base, lora_dir) as from the LoRA checkpoint, and not the base's."""
    from sdar_core.rollout.backends.base import SamplingSettings
    from sdar_core.rollout.backends.hf import make_hf_backend

    out, _ = adapter
    settings = SamplingSettings(temperature=1.0, top_p=1.0, max_new_tokens=8)
    prompts = [[5, 6, 7, 8], [9, 10, 11]]
    from_checkpoint = make_hf_backend(out, settings=settings).generate(prompts, seeds=[1, 2])
    with_lora = make_hf_backend(tiny_model_dir, settings=settings, lora_dir=out)
    from_base_and_lora = with_lora.generate(prompts, seeds=[1, 2])
    base_only = make_hf_backend(tiny_model_dir, settings=settings).generate(prompts, seeds=[1, 2])
    for a, b in zip(from_checkpoint, from_base_and_lora, strict=True):
        assert a.token_ids == b.token_ids
        torch.testing.assert_close(a.logprobs, b.logprobs, rtol=1e-5, atol=1e-6)
    assert any(
        a.token_ids != c.token_ids or a.logprobs != c.logprobs
        for a, c in zip(from_checkpoint, base_only, strict=True)
    )


def test_a_lora_checkpoint_without_its_base_is_a_clear_error(tiny_model_dir, adapter, tmp_path):
    import json
    import shutil

    from sdar_core.errors import ArtifactError
    from sdar_core.models import merge_adapter

    out, _ = adapter
    moved = tmp_path / "moved"
    shutil.copytree(out, moved)
    config = json.loads((moved / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(tmp_path / "gone")
    (moved / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(ArtifactError, match="base_model_name_or_path"):
        load_model(moved)
    with pytest.raises(ArtifactError, match="adapter_config.json"):
        merge_adapter(load_model(tiny_model_dir), tmp_path)  # not an adapter folder
    pickled = tmp_path / "pickled"
    shutil.copytree(out, pickled)
    (pickled / "adapter_model.safetensors").rename(pickled / "adapter_model.bin")
    with pytest.raises(ArtifactError, match="safetensors only"):
        load_model(pickled)


def test_vllm_gets_a_lora_checkpoint_as_base_plus_lora_request(tiny_model_dir, adapter):
    from sdar_core.rollout.backends.vllm import split_lora_checkpoint

    out, _ = adapter
    assert split_lora_checkpoint(out) == (tiny_model_dir, out)
    assert split_lora_checkpoint(tiny_model_dir) == (tiny_model_dir, None)
    assert split_lora_checkpoint(tiny_model_dir, out) == (tiny_model_dir, out)
    with pytest.raises(ConfigError, match="pass one of them"):
        split_lora_checkpoint(out, out)
