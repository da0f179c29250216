"""Training across rounds: the trainer state carried through the checkpoints makes R rounds of
updates the same as one process taking the same optimizer steps on the same batches (torch and
DeepSpeed ZeRO-2); dropping it does not; the KL reference of a late round is the run's starting
model; counters and the state's files are what the next round needs."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from conftest import carried_update_config, update_rounds
from safetensors.torch import load_file

from sdar_core.algos import get_algorithm, kl_penalty, masked_mean
from sdar_core.errors import ArtifactError, ConfigError
from sdar_core.rollout import read_trajectories
from sdar_core.train import (
    STATE_DIR,
    PolicyHead,
    UpdateConfig,
    build_rl_samples,
    collate,
    load_policy,
    make_engine,
    read_counters,
    rl_loss,
    sdar_update,
    train_loop,
)
from sdar_core.train.objective import RLSettings
from sdar_core.train.update import add_start_logprobs

ROUNDS = 3


@pytest.fixture(scope="module")
def batches(make_scored_trajectories, tmp_path_factory):
    root = tmp_path_factory.mktemp("rounds")
    return [make_scored_trajectories(root / f"b{r}", seed=r + 1) for r in range(ROUNDS)]


def _config(algorithm: str, **extra) -> UpdateConfig:
    return carried_update_config(ROUNDS, algorithm=algorithm, **extra)


def _one_process(start, batches, config) -> dict[str, torch.Tensor]:
    """The same R steps in one engine that lives through the whole run."""
    head = PolicyHead(load_policy(start, config), temperature=1.0, chunk_size=None)
    head.with_entropy = True
    engine = None
    for r, path in enumerate(batches, start=1):
        algo = get_algorithm(config.algorithm)
        samples, _ = build_rl_samples(read_trajectories(path, require_teacher=True), algo)
        if engine is None:
            engine = make_engine(head, config, lr=config.lr, total_steps=ROUNDS)
        # the reference is the starting model: load it apart, as the update does
        ref = PolicyHead(load_policy(start, config), temperature=1.0, chunk_size=None)
        add_start_logprobs(ref, samples, algo, config, None, 0)
        settings = RLSettings(clip={}, iteration=r)
        train_loop(
            engine, samples, config, agg_mode=algo.agg_mode, pad_id=_pad(start),
            loss_fn=lambda o, b, s, st=settings, a=algo: rl_loss(o, b, a, st),
            position=lambda s, r=r: r - 1, shuffle_offset=r,
        )  # fmt: skip
    return {n: p.detach().clone() for n, p in head.model.named_parameters()}


def _pad(model_dir) -> int:
    from sdar_core.models import load_tokenizer

    return int(load_tokenizer(model_dir).pad_token_id)


def _assert_close_weights(got: dict, want: dict, rtol: float) -> float:
    worst = 0.0
    for name, value in want.items():
        key = name if name in got else name.removeprefix("model.")
        diff = float((got[key] - value).abs().max()) / max(float(value.abs().max()), 1e-12)
        worst = max(worst, diff)
    assert worst <= rtol, worst
    return worst


def _distance(got: dict, want: dict) -> float:
    return max(
        float((got[n if n in got else n.removeprefix("model.")] - v).abs().max())
        / max(float(v.abs().max()), 1e-12)
        for n, v in want.items()
    )


@pytest.mark.parametrize("algorithm", ["sdar", "rlsd"])
def test_rounds_with_carried_state_equal_one_process(tiny_model_dir, batches, tmp_path, algorithm):
    config = _config(algorithm)
    models = update_rounds(tiny_model_dir, batches, tmp_path / "carried", config)
    final = load_file(models[-1] / "model.safetensors")
    reference = _one_process(tiny_model_dir, batches, config)
    _assert_close_weights(final, reference, rtol=1e-6)
    counters = read_counters(models[-1])
    assert (counters.iteration, counters.optimizer_step) == (ROUNDS, ROUNDS)
    # dropping the carried state (a fresh AdamW and schedule each round) is far from it
    fresh = update_rounds(
        tiny_model_dir, batches, tmp_path / "fresh", _config(algorithm, trainer_state="fresh")
    )
    assert _distance(load_file(fresh[-1] / "model.safetensors"), reference) > 1e-3


def test_deepspeed_zero2_rounds_equal_one_process(tiny_model_dir, batches, tmp_path):
    config = _config("grpo", backend="deepspeed", zero_stage=2, max_grad_norm=None)
    models = update_rounds(tiny_model_dir, batches, tmp_path / "ds", config)
    assert (models[-1] / STATE_DIR / "deepspeed").is_dir()
    final = load_file(models[-1] / "model.safetensors")
    reference = _one_process(tiny_model_dir, batches, config)
    _assert_close_weights(final, reference, rtol=1e-6)
    fresh = update_rounds(
        tiny_model_dir,
        batches,
        tmp_path / "fresh",
        _config("grpo", backend="deepspeed", max_grad_norm=None, trainer_state="fresh"),
    )
    assert _distance(load_file(fresh[-1] / "model.safetensors"), reference) > 1e-3


def test_kl_reference_of_round_3_is_the_starting_model(tiny_model_dir, batches, tmp_path):
    config = _config("grpo")
    models = update_rounds(tiny_model_dir, batches, tmp_path / "r", config)
    metrics = json.loads((models[-1] / "metrics.json").read_text())
    # independently: token-mean k3 of the round-3 policy (before its step) against the start
    algo = get_algorithm("grpo")
    samples, _ = build_rl_samples(read_trajectories(batches[-1], require_teacher=True), algo)
    batch = collate(samples, pad_id=_pad(tiny_model_dir), device="cpu")

    def logprobs(model_dir):
        head = PolicyHead(load_policy(model_dir, config), temperature=1.0, chunk_size=None)
        with torch.no_grad():
            return head.eval()(batch)

    kl = kl_penalty(logprobs(models[-2]), logprobs(tiny_model_dir), "low_var_kl")
    expected = float(masked_mean(kl, batch.response_mask))
    assert expected > 1e-5  # the policy has moved: a reference taken at the round's start gives 0
    assert metrics["history"][0]["kl_loss"] == pytest.approx(expected, rel=1e-5)


def test_a_late_round_without_the_reference_is_refused(tiny_model_dir, batches, tmp_path):
    config = _config("grpo")
    first = tmp_path / "first"
    sdar_update(tiny_model_dir, batches[0], first, config, ref_model_dir=tiny_model_dir)
    with pytest.raises(ConfigError, match="KL reference must be the run's starting model"):
        sdar_update(first, batches[1], tmp_path / "second", config)
    with pytest.raises(ConfigError, match="trainer state written with backend='torch'"):
        sdar_update(
            first, batches[1], tmp_path / "third", _config("grpo", backend="deepspeed"),
            ref_model_dir=tiny_model_dir,
        )  # fmt: skip
    assert not (tmp_path / "second").exists() and not (tmp_path / "third").exists()


def test_trainer_state_files_load_without_pickle(tiny_model_dir, batches, tmp_path):
    out = tmp_path / "one"
    metrics = sdar_update(tiny_model_dir, batches[0], out, _config("grpo"))
    state = out / STATE_DIR
    assert sorted(p.name for p in state.iterdir()) == ["torch", "trainer_state.json"]
    tensors = load_file(state / "torch" / "optimizer.safetensors")
    n_weights = sum(v.numel() for v in load_file(out / "model.safetensors").values())
    moments = sum(v.numel() for k, v in tensors.items() if k.endswith(("exp_avg", "exp_avg_sq")))
    assert moments == 2 * n_weights  # AdamW: two float32 moments per trained weight
    assert metrics["state_save_seconds"] >= 0 and metrics["iteration"] == 1


def test_state_dir_keeps_the_optimizer_state_outside_the_checkpoint(
    tiny_model_dir, batches, tmp_path
):
    # as on a cluster with a PVC: the checkpoint (an artifact) holds the weights and the counters,
    # the moments stay on the volume; the run is the same as with the state inside
    inside = update_rounds(tiny_model_dir, batches[:2], tmp_path / "inside", _config("grpo"))
    config = _config("grpo", state_dir=tmp_path / "pvc")
    outside = update_rounds(tiny_model_dir, batches[:2], tmp_path / "outside", config)
    assert sorted(p.name for p in (outside[-1] / STATE_DIR).iterdir()) == ["trainer_state.json"]
    assert len(list((tmp_path / "pvc").iterdir())) == 2  # one state per round, none half-written
    a, b = (load_file(m[-1] / "model.safetensors") for m in (inside, outside))
    assert all(torch.equal(a[k], b[k]) for k in a)
    location = read_counters(outside[-1]).extra["location"]
    shutil.rmtree(location)
    with pytest.raises(ArtifactError, match="does not exist here: mount the same volume"):
        sdar_update(outside[-1], batches[2], tmp_path / "o", config, ref_model_dir=tiny_model_dir)
