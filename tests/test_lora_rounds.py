"""LoRA through a run, the way users expect it: the warm-start adapter is merged into full weights
(the run's start model) and equals base + adapter in log-probs; RL trains a fresh adapter on that
model, which is the KL reference of every round; adapters across rounds carry the optimizer state
(three rounds equal one process taking the same steps, and differ without the state); adapter
checkpoints are refused when their bytes differ from their checksums."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import carried_update_config, update_rounds
from safetensors.torch import load_file

from sdar_core.algos import get_algorithm, kl_penalty, masked_mean
from sdar_core.errors import ArtifactError
from sdar_core.models import load_model, load_tokenizer
from sdar_core.models.checksums import verify_checksums
from sdar_core.rollout import read_trajectories
from sdar_core.train import (
    PolicyHead,
    SFTConfig,
    UpdateConfig,
    build_rl_samples,
    collate,
    load_policy,
    make_engine,
    read_counters,
    rl_loss,
    sdar_update,
    train_loop,
    warmstart_sft,
)
from sdar_core.train.objective import RLSettings
from sdar_core.train.state import seed_global_rng
from sdar_core.train.update import add_start_logprobs

pytestmark = pytest.mark.transformers
ROUNDS = 3


@pytest.fixture(scope="module")
def batches(make_scored_trajectories, tmp_path_factory):
    root = tmp_path_factory.mktemp("lora_rounds")
    return [make_scored_trajectories(root / f"b{r}", seed=r + 11) for r in range(ROUNDS)]


@pytest.fixture(scope="module")
def warm(tiny_model_dir, alfworld_games_dir, tmp_path_factory):
    """A LoRA warm start of the tiny model (a high lr so the adapter moves the policy)."""
    out = tmp_path_factory.mktemp("lora_warm") / "sft"
    config = SFTConfig(
        lora=True, think_words=0, n_tasks=1, epochs=2, lr=1e-2, mini_batch_size=4, max_steps=20
    )
    warmstart_sft(tiny_model_dir, alfworld_games_dir, out, config)
    return out


def _batch(model_dir, path):
    samples, _ = build_rl_samples(
        read_trajectories(path, require_teacher=True), get_algorithm("sdar")
    )
    return collate(samples, pad_id=int(load_tokenizer(model_dir).pad_token_id), device="cpu")


def _logprobs(model, batch) -> torch.Tensor:
    head = PolicyHead(model, temperature=1.0, chunk_size=None).eval()
    with torch.no_grad():
        return head(batch)  # (B, T)


def test_lora_warm_start_is_merged_and_equals_base_plus_adapter(tiny_model_dir, warm, batches):
    import peft

    names = {p.name for p in warm.iterdir()}
    assert {"model.safetensors", "config.json", "lora_adapter", "checksums.json"} <= names
    assert "adapter_config.json" not in names  # loads as full weights: the run's start model
    verify_checksums(warm, nested=True)  # the kept adapter is covered too
    batch = _batch(tiny_model_dir, batches[0])
    merged = _logprobs(load_model(warm, dtype="float32"), batch)
    base_model = load_model(tiny_model_dir, dtype="float32")
    base = _logprobs(base_model, batch)
    adapted = peft.PeftModel.from_pretrained(base_model, warm / "lora_adapter")
    with_adapter = _logprobs(adapted, batch)
    assert (with_adapter - base).abs().max() > 1e-2  # the warm start changed the policy
    torch.testing.assert_close(merged, with_adapter, rtol=1e-5, atol=1e-5)


def _lora(**extra) -> UpdateConfig:
    fields = dict(algorithm="sdar", lora=True, lr=1e-2, weight_decay=0.0)
    return carried_update_config(ROUNDS, **(fields | extra))


def test_rl_trains_a_fresh_adapter_on_the_merged_start_its_kl_reference(warm, batches, tmp_path):
    config = _lora()
    models = update_rounds(warm, batches[:2], tmp_path / "r", config)
    for adapter in models[1:]:
        assert not (adapter / "model.safetensors").exists()  # no round copies the base
        base = json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
        assert warm.samefile(base)
    # independently: k3 of round 2's policy (before its step, i.e. round 1's adapter) against
    # the merged start model, token-mean, as the update logs it
    batch = _batch(warm, batches[1])
    policy = _logprobs(load_policy(models[1], config), batch)
    start = _logprobs(load_model(warm, dtype="float32"), batch)
    kl = kl_penalty(policy, start, "low_var_kl")
    expected = float(masked_mean(kl, batch.response_mask))
    assert expected > 1e-6  # round 1's adapter moved the policy away from the start
    metrics = json.loads((models[2] / "metrics.json").read_text())
    assert metrics["history"][0]["kl_loss"] == pytest.approx(expected, rel=1e-5)


def _one_process(start, batches, config) -> dict[str, torch.Tensor]:
    """The same R steps on one adapter and one optimizer that live through the whole run."""
    seed_global_rng(config.seed, 1)  # the fresh adapter's draw, as round 1's update makes it
    head = PolicyHead(load_policy(start, config), temperature=1.0, chunk_size=None)
    head.with_entropy = True
    algo = get_algorithm(config.algorithm)
    engine = make_engine(head, config, lr=config.lr, total_steps=ROUNDS)
    pad = int(load_tokenizer(start).pad_token_id)
    for r, path in enumerate(batches, start=1):
        samples, _ = build_rl_samples(read_trajectories(path, require_teacher=True), algo)
        add_start_logprobs(head, samples, algo, config, start, pad)  # adapter disabled: start
        settings = RLSettings(clip={}, iteration=r)
        train_loop(
            engine, samples, config, agg_mode=algo.agg_mode, pad_id=pad,
            loss_fn=lambda o, b, s, st=settings, a=algo: rl_loss(o, b, a, st),
            position=lambda s, r=r: r - 1, shuffle_offset=r,
        )  # fmt: skip
    return {
        n.replace(".default", ""): p.detach().clone()
        for n, p in head.model.named_parameters()
        if "lora_" in n
    }


def _worst(got: dict, want: dict) -> float:
    assert set(got) == set(want)
    return max(
        float((got[n] - v).abs().max()) / max(float(v.abs().max()), 1e-12) for n, v in want.items()
    )


def test_adapters_across_rounds_carry_the_optimizer_state(tiny_model_dir, batches, tmp_path):
    config = _lora()
    models = update_rounds(tiny_model_dir, batches, tmp_path / "carried", config)
    final = load_file(models[-1] / "adapter_model.safetensors")
    reference = _one_process(tiny_model_dir, batches, config)
    assert _worst(final, reference) <= 1e-5
    counters = read_counters(models[-1])
    assert (counters.iteration, counters.optimizer_step, counters.lora) == (ROUNDS, ROUNDS, True)
    fresh = update_rounds(tiny_model_dir, batches, tmp_path / "fresh", _lora(trainer_state="fresh"))
    assert _worst(load_file(fresh[-1] / "adapter_model.safetensors"), reference) > 1e-3


def test_an_adapter_with_changed_bytes_is_refused(tiny_model_dir, batches, tmp_path):
    out = tmp_path / "adapter"
    sdar_update(tiny_model_dir, batches[0], out, _lora())
    weights = out / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one bit pattern in the last tensor's bytes: still a readable file
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="adapter_model.safetensors"):
        load_policy(out, _lora())  # training it on
    with pytest.raises(ArtifactError, match="adapter_model.safetensors"):
        load_model(out)  # every inference stage
