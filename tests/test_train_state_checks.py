"""The trainer state a later round resumes from is checked before it is used: every file of it is
in the checkpoint's checksums (garbled optimizer moments are refused naming the file, never
trained on), a later round's checkpoint whose trainer_state/ is gone is refused unless the
update asks for a fresh optimizer, and an edited groups.json is refused in one line naming it
(not a torch traceback, not a failure at the first step)."""

from __future__ import annotations

import json
import shutil

import pytest
from safetensors.torch import load_file, save_file

from sdar_core.errors import ArtifactError
from sdar_core.models import load_model
from sdar_core.models.checksums import CHECKSUMS_FILE, write_checksums
from sdar_core.train import STATE_DIR, UpdateConfig, read_counters, sdar_update

OPTIMIZER = f"{STATE_DIR}/torch/optimizer.safetensors"
GROUPS = f"{STATE_DIR}/torch/groups.json"


def _config(**extra) -> UpdateConfig:
    return UpdateConfig(**({"algorithm": "grpo", "lr": 1e-3, "mini_batch_size": None} | extra))


@pytest.fixture(scope="module")
def first_round(tiny_model_dir, make_scored_trajectories, tmp_path_factory):
    """Round 0's checkpoint (with its trainer state) and round 1's batch; treat as read-only."""
    root = tmp_path_factory.mktemp("state")
    batches = [make_scored_trajectories(root / f"b{r}", seed=r + 1) for r in range(2)]
    checkpoint = root / "round0"
    sdar_update(tiny_model_dir, batches[0], checkpoint, _config(), ref_model_dir=tiny_model_dir)
    return checkpoint, batches[1]


@pytest.fixture
def checkpoint(first_round, tmp_path):
    return shutil.copytree(first_round[0], tmp_path / "round0")


def _next_round(tiny_model_dir, checkpoint, batch, out, **extra) -> dict:
    return sdar_update(checkpoint, batch, out, _config(**extra), ref_model_dir=tiny_model_dir)


def _one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_every_file_of_the_trainer_state_is_in_the_checksums(checkpoint):
    record = json.loads((checkpoint / CHECKSUMS_FILE).read_text())["files"]
    on_disk = {
        p.relative_to(checkpoint).as_posix()
        for p in checkpoint.rglob("*")
        if p.is_file() and p.name != CHECKSUMS_FILE
    }
    assert set(record) == on_disk
    assert {OPTIMIZER, GROUPS, f"{STATE_DIR}/trainer_state.json"} <= on_disk


def test_garbled_optimizer_moments_are_refused_naming_the_file(
    tiny_model_dir, first_round, checkpoint, tmp_path
):
    path = checkpoint / OPTIMIZER
    tensors = load_file(path)
    moment = next(k for k in sorted(tensors) if k.endswith("/exp_avg"))
    tensors[moment] = tensors[moment] * 1000.0 + 1.0  # the file stays a valid safetensors file
    save_file(tensors, path)
    out = tmp_path / "round1"
    with pytest.raises(ArtifactError) as excinfo:
        _next_round(tiny_model_dir, checkpoint, first_round[1], out)
    message = _one_line_error(excinfo)
    assert f"{path} does not match its sha256" in message and "trainer_state='fresh'" in message
    assert not out.exists()
    # the model itself is intact: evaluating it does not need the optimizer
    assert load_model(checkpoint) is not None


def test_a_later_round_without_its_trainer_state_is_refused_unless_fresh(
    tiny_model_dir, first_round, checkpoint, tmp_path
):
    shutil.rmtree(checkpoint / STATE_DIR)
    with pytest.raises(ArtifactError) as excinfo:
        _next_round(tiny_model_dir, checkpoint, first_round[1], tmp_path / "refused")
    message = _one_line_error(excinfo)
    assert f"{checkpoint} was written by RL update iteration 1 but its {STATE_DIR}/" in message
    assert "trainer_state='fresh'" in message
    fresh = tmp_path / "fresh"
    metrics = _next_round(tiny_model_dir, checkpoint, first_round[1], fresh, trainer_state="fresh")
    assert metrics["iteration"] == 1 and read_counters(fresh).iteration == 1


def test_without_a_record_a_missing_state_is_still_recognised(
    tiny_model_dir, first_round, checkpoint, tmp_path
):
    # a checkpoint whose record predates trainer-state checksums: metrics.json says it was an update
    shutil.rmtree(checkpoint / STATE_DIR)
    write_checksums(checkpoint)
    with pytest.raises(ArtifactError, match="was written by RL update iteration 1"):
        _next_round(tiny_model_dir, checkpoint, first_round[1], tmp_path / "refused")


@pytest.mark.parametrize(
    "tamper",
    [
        lambda g: g["groups"][0].update(params=g["groups"][0]["params"][:-1]),
        lambda g: g["groups"][0].update(betas=[0.9]),
        lambda g: g["groups"][0].update(lr="fast"),
        lambda g: g["groups"][0].pop("eps"),
        lambda g: g.update(groups={}),
    ],
    ids=["params", "betas", "lr", "eps", "groups"],
)
@pytest.mark.parametrize("rerecorded", [False, True], ids=["record", "record-rewritten"])
def test_an_edited_groups_json_is_one_line_naming_it(
    tiny_model_dir, first_round, checkpoint, tmp_path, tamper, rerecorded
):
    path = checkpoint / GROUPS
    saved = json.loads(path.read_text())
    tamper(saved)
    path.write_text(json.dumps(saved))
    if rerecorded:  # checksums that match the edit: the file's shape is still checked
        write_checksums(checkpoint)
    with pytest.raises(ArtifactError) as excinfo:
        _next_round(tiny_model_dir, checkpoint, first_round[1], tmp_path / "round1")
    assert str(path) in _one_line_error(excinfo)
