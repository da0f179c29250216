"""Checkpoints carry checksums written at save and verified at load: a damaged weights file is
refused with its path, never loaded as NaN or random weights."""

import json
import shutil

import pytest

from sdar_core.errors import ArtifactError
from sdar_core.models import load_model
from sdar_core.models.checksums import CHECKSUMS_FILE, verify_checksums
from sdar_core.train.policy import save_checkpoint

WEIGHTS = "model.safetensors"


@pytest.fixture
def model_dir(tiny_model_dir, tmp_path):
    return shutil.copytree(tiny_model_dir, tmp_path / "model")


def _data_start(path) -> int:
    return 8 + int.from_bytes(path.read_bytes()[:8], "little")


def test_a_built_model_records_every_file(model_dir):
    record = json.loads((model_dir / CHECKSUMS_FILE).read_text())
    names = {p.name for p in model_dir.iterdir()} - {CHECKSUMS_FILE}
    assert set(record["files"]) == names and WEIGHTS in names
    assert verify_checksums(model_dir) is True


def test_garbage_written_into_the_weights_is_refused_naming_the_file(model_dir):
    path = model_dir / WEIGHTS
    with path.open("r+b") as handle:  # 4 KiB of garbage inside the tensors, size unchanged
        handle.seek(_data_start(path) + 1024)
        handle.write(b"\xff" * 4096)
    with pytest.raises(ArtifactError, match=f"{path} does not match its sha256"):
        load_model(model_dir)


def test_a_truncated_weights_file_is_refused_naming_the_file(model_dir):
    path = model_dir / WEIGHTS
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ArtifactError, match=f"{path} has \\d+ bytes, \\d+ were saved"):
        load_model(model_dir)


def test_without_checksums_a_truncated_file_still_names_its_path(model_dir):
    (model_dir / CHECKSUMS_FILE).unlink()
    path = model_dir / WEIGHTS
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ArtifactError, match=f"{path} has 100 bytes but its header claims"):
        load_model(model_dir)


def test_without_checksums_nan_weights_are_refused_naming_the_tensor(model_dir):
    (model_dir / CHECKSUMS_FILE).unlink()
    path = model_dir / WEIGHTS
    with path.open("r+b") as handle:  # 0xffffffff is a float32 NaN
        handle.seek(_data_start(path))
        handle.write(b"\xff" * 4096)
    with pytest.raises(ArtifactError, match="weight .* holds NaN or inf values"):
        load_model(model_dir)


def test_checksums_without_files_is_a_clear_error(model_dir):
    (model_dir / CHECKSUMS_FILE).write_text(json.dumps({"kind": "sdar_checkpoint_checksums"}))
    with pytest.raises(ArtifactError, match="has no 'files' table of sha256 checksums"):
        load_model(model_dir)


def test_save_checkpoint_writes_checksums_that_load_verifies(tiny_model_dir, tmp_path):
    model = load_model(tiny_model_dir, dtype="float32")
    out = save_checkpoint(model, None, tiny_model_dir, tmp_path / "ckpt", {"steps": 1})
    record = json.loads((out / CHECKSUMS_FILE).read_text())
    assert {WEIGHTS, "metrics.json", "config.json"} <= set(record["files"])
    load_model(out)
    (out / "metrics.json").write_text("{}")
    with pytest.raises(ArtifactError, match="metrics.json has"):
        load_model(out)
