"""Only weights cross artifact storage (issue 20, item 2): with the trainer state on a shared
folder and bfloat16 weights in the checkpoint, two rounds train exactly as with the float32
state inside the checkpoint (the float32 weights live in the state); old state folders are
pruned, keeping what a resume or retry needs."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from conftest import carried_update_config, update_rounds
from safetensors.torch import load_file

from sdar_core.train import STATE_DIR, UpdateConfig, read_counters, sdar_update
from sdar_core.train.state import MASTER_FILE, prune_state_folders


def _config(**extra) -> UpdateConfig:
    return carried_update_config(3, **extra)


def _batches(make_scored_trajectories, root, n):
    return [make_scored_trajectories(root / f"b{r}", seed=r + 1) for r in range(n)]


def test_bf16_weights_with_the_state_on_a_folder_equal_the_state_inside(
    tiny_model_dir, make_scored_trajectories, tmp_path
):
    batches = _batches(make_scored_trajectories, tmp_path, 2)
    inside = update_rounds(tiny_model_dir, batches, tmp_path / "inside", _config())
    config = _config(state_dir=tmp_path / "volume", weights_dtype="bfloat16")
    outside = update_rounds(tiny_model_dir, batches, tmp_path / "outside", config)

    final = outside[-1]
    assert sorted(p.name for p in (final / STATE_DIR).iterdir()) == ["trainer_state.json"]
    assert json.loads((final / "config.json").read_text())["dtype"] == "bfloat16"
    weights = load_file(final / "model.safetensors")
    reference = load_file(inside[-1] / "model.safetensors")
    assert set(weights) == set(reference)
    assert all(w.dtype == torch.bfloat16 for w in weights.values())
    for name, ref in reference.items():  # the artifact is the float32 run's weights, rounded
        assert ref.dtype == torch.float32
        assert torch.equal(weights[name], ref.to(torch.bfloat16)), name
    # the float32 weights the next round trains on are the unchained run's (round 1 resumed from
    # them, not from the rounded round-0 artifact: that would be ~1e-3 off)
    location = read_counters(final).extra["location"]
    master = load_file(f"{location}/torch/{MASTER_FILE}")
    by_name = {k.removeprefix("model."): v for k, v in master.items()}
    for name, ref in reference.items():
        torch.testing.assert_close(by_name[name], ref, rtol=0, atol=1e-6)


def test_old_state_folders_are_pruned_keeping_what_a_retry_needs(
    tiny_model_dir, make_scored_trajectories, tmp_path
):
    batches = _batches(make_scored_trajectories, tmp_path, 3)
    volume = tmp_path / "volume"
    config = _config(state_dir=volume)
    models = update_rounds(tiny_model_dir, batches[:2], tmp_path / "run", config)
    leftovers = [volume / ".iteration-00003-0123456789ab.tmp", volume / "iteration-00009-ab"]
    for folder in leftovers:  # an interrupted write; an abandoned attempt's state
        folder.mkdir()
    unrelated = volume / "notes"
    unrelated.mkdir()

    sdar_update(models[-1], batches[2], tmp_path / "round2", config, ref_model_dir=tiny_model_dir)
    named = {read_counters(m).extra["location"] for m in (models[-1], tmp_path / "round2")}
    left = {str(p.resolve()) for p in volume.iterdir() if p.name.startswith("iteration-")}
    assert left == named  # the newest, and the one it resumed from; iteration 1's is gone
    assert not any(f.exists() for f in leftovers) and unrelated.is_dir()
    # a retry of the last update (from the same checkpoint) still finds its state
    retry = tmp_path / "round2-retry"
    sdar_update(models[-1], batches[2], retry, config, ref_model_dir=tiny_model_dir)
    a, b = (load_file(m / "model.safetensors") for m in (tmp_path / "round2", retry))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_pruning_needs_the_volume_folder_only(tmp_path):
    for name in ("iteration-00001-a", "iteration-00002-b", "iteration-00003-c"):
        (tmp_path / name / "torch").mkdir(parents=True)
    removed = prune_state_folders(tmp_path, keep={tmp_path / "iteration-00003-c", None})
    assert [p.name for p in removed] == ["iteration-00001-a", "iteration-00002-b"]
    assert prune_state_folders(tmp_path / "absent", keep=set()) == []


def test_deepspeed_resumes_from_its_float32_copy_not_the_bf16_artifact(
    tiny_model_dir, make_scored_trajectories, tmp_path
):
    # DeepSpeed's own folder holds the float32 module (and ZeRO's master weights); its
    # load_checkpoint puts them back over the bf16 weights the update loaded from the artifact
    batches = _batches(make_scored_trajectories, tmp_path, 2)
    ds = dict(backend="deepspeed", zero_stage=2, max_grad_norm=None)
    inside = update_rounds(tiny_model_dir, batches, tmp_path / "inside", _config(**ds))
    config = _config(**ds, state_dir=tmp_path / "volume", weights_dtype="bfloat16")
    outside = update_rounds(tiny_model_dir, batches, tmp_path / "outside", config)
    reference = load_file(inside[-1] / "model.safetensors")
    weights = load_file(outside[-1] / "model.safetensors")
    assert all(weights[k].dtype == torch.bfloat16 for k in reference)
    location = read_counters(outside[-1]).extra["location"]
    (module_file,) = Path(location, "deepspeed").rglob("*model_states.pt")
    module = torch.load(module_file, map_location="cpu", weights_only=False)["module"]
    by_name = {k.removeprefix("model."): v for k, v in module.items()}
    for name, ref in reference.items():
        torch.testing.assert_close(by_name[name], ref, rtol=0, atol=1e-6)


def test_a_lora_adapter_in_bf16_resumes_from_its_float32_copy(
    tiny_model_dir, make_scored_trajectories, tmp_path
):
    batches = _batches(make_scored_trajectories, tmp_path, 2)
    lora = dict(lora=True, lr=1e-2, weight_decay=0.0)
    inside = update_rounds(tiny_model_dir, batches, tmp_path / "inside", _config(**lora))
    config = _config(**lora, state_dir=tmp_path / "volume", weights_dtype="bfloat16")
    outside = update_rounds(tiny_model_dir, batches, tmp_path / "outside", config)
    reference = load_file(inside[-1] / "adapter_model.safetensors")
    adapter = load_file(outside[-1] / "adapter_model.safetensors")
    assert set(adapter) == set(reference)
    assert all(v.dtype == torch.bfloat16 for v in adapter.values())
    location = read_counters(outside[-1]).extra["location"]
    master = load_file(f"{location}/torch/{MASTER_FILE}")
    assert len(master) == len(reference)
    for name, ref in reference.items():  # peft saves "...lora_A.weight" for "...lora_A.default"
        (match,) = [v for k, v in master.items() if k.replace(".default", "").endswith(name)]
        torch.testing.assert_close(match, ref, rtol=0, atol=1e-6)
