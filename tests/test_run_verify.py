"""Verified resume, piece by piece (no pipeline run): every output a later stage or a resume relies
on is checked against the record written when it was produced (`output_damage`); kfp.local's
cache, inside `verified_cache`, does not reuse a hit whose outputs are damaged (its entry and
folder are removed, one line says so); `remove_unfinished` removes the task folders of attempts
that never finished. The whole flow on a tiny pipeline is in test_pipeline_verified_resume.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from kfp import dsl, local
from kfp.local import cache as kfp_cache

from pipelines.cache import remove_unfinished, verified_cache
from sdar_core.run.verify import file_record, output_damage
from sdar_core.train import UpdateConfig, sdar_update


def _garble(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 16] = bytes(b ^ 0xFF for b in data[middle : middle + 16])
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def produced(tiny_model_dir, make_scored_trajectories, tmp_path_factory):
    """A round's outputs as the stages write them: scored trajectories and an update's
    checkpoint (trainer state included); treat as read-only."""
    root = tmp_path_factory.mktemp("produced")
    batch = make_scored_trajectories(root / "scored")
    config = UpdateConfig(algorithm="grpo", lr=1e-3, mini_batch_size=None)
    checkpoint = root / "checkpoint"
    sdar_update(tiny_model_dir, batch, checkpoint, config, ref_model_dir=tiny_model_dir)
    return {"trajectories": batch, "checkpoint": checkpoint}


@pytest.fixture
def outputs(produced, tmp_path):
    return {name: shutil.copytree(path, tmp_path / name) for name, path in produced.items()}


@pytest.mark.parametrize(
    ("output", "file"),
    [
        ("checkpoint", "model.safetensors"),
        ("checkpoint", "trainer_state/torch/optimizer.safetensors"),
        ("checkpoint", "trainer_state/torch/groups.json"),
        ("trajectories", "data.parquet"),
        ("trajectories", "metadata.json"),
    ],
)
def test_a_damaged_file_of_a_folder_output_is_named(outputs, output, file):
    folder = outputs[output]
    assert output_damage(folder, kind="system.Model", metadata={}) is None
    _garble(folder / file)
    assert output_damage(folder, kind="system.Model", metadata={}) == f"{file}: sha256 mismatch"
    (folder / file).unlink()
    assert output_damage(folder, kind="system.Model", metadata={}) == f"{file}: missing"


def test_a_folder_without_a_record_is_not_trusted(outputs):
    (outputs["trajectories"] / "checksums.json").unlink()
    damage = output_damage(outputs["trajectories"], kind="system.Dataset", metadata={})
    assert damage == "no checksum record"


def test_a_skill_index_is_checked_against_its_manifest(tmp_path):
    from sdar_core.skills import build_index, bundled_skills_dir

    index = build_index(bundled_skills_dir("alfworld"), tmp_path / "index", dense=False)
    assert output_damage(index, kind="system.Artifact", metadata={}) is None
    manifest = json.loads((index / "manifest.json").read_text())
    name = sorted(manifest["files"])[0]
    _garble(index / name)
    assert output_damage(index, kind="system.Artifact", metadata={}) == (
        f"index file {name} was modified"
    )


def test_a_file_output_is_checked_against_the_sha256_in_its_metadata(tmp_path):
    results = tmp_path / "results"
    results.write_text(json.dumps({"metrics": {"success/all": 0.5}}))
    record = file_record(results)
    assert output_damage(results, kind="system.Artifact", metadata=record) is None
    results.write_text(json.dumps({"metrics": {"success/all": 0.9}}))
    assert output_damage(results, kind="system.Artifact", metadata=record) == (
        "results: sha256 mismatch"
    )
    assert output_damage(results, kind="system.Artifact", metadata={}) == "no checksum record"


def test_a_metrics_file_must_equal_the_metrics_recorded_with_it(tmp_path):
    metrics = tmp_path / "metrics"
    recorded = {"update/loss": 0.25, "update/steps": 1.0, "update/kl": float("nan")}
    metrics.write_text(json.dumps(recorded | {"update/steps": 1}))  # kfp's metadata has floats
    assert output_damage(metrics, kind="system.Metrics", metadata=recorded) is None
    metrics.write_text(json.dumps(recorded | {"update/loss": 2.5}))
    assert output_damage(metrics, kind="system.Metrics", metadata=recorded) == (
        "metrics: differs from its record"
    )
    metrics.write_bytes(b"\xff\xfe")
    assert "not readable JSON" in output_damage(metrics, kind="system.Metrics", metadata=recorded)


@pytest.fixture
def kfp_cache_with_a_checkpoint(produced, tmp_path):
    """A pipeline root whose kfp.local cache holds one finished update task's entry."""
    root = tmp_path / "pipeline_root"
    task = root / "sdar-alfworld-grpo-r1-2026-01-01-00-00-00-000000" / "sdar-update"
    checkpoint = shutil.copytree(produced["checkpoint"], task / "checkpoint")
    (task / "executor_output.json").write_text("{}")
    local.init(
        runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root), enable_caching=True
    )
    artifact = dsl.Model(name="checkpoint", uri=str(checkpoint), metadata={})
    kfp_cache.get_local_cache().put("key", {"checkpoint": artifact})
    yield root, task
    kfp_cache.reset_local_cache_singleton()


def test_the_cache_reuses_a_verified_hit_and_runs_a_damaged_one_again(
    kfp_cache_with_a_checkpoint,
):
    root, task = kfp_cache_with_a_checkpoint
    lines: list[str] = []
    labels = {"sdar-update": "round 0: update"}
    with verified_cache(labels, notify=lines.append):
        hit = kfp_cache.get_local_cache().get("key")
        assert hit["checkpoint"].uri == str(task / "checkpoint") and lines == []
        _garble(task / "checkpoint" / "trainer_state" / "torch" / "optimizer.safetensors")
        assert kfp_cache.get_local_cache().get("key") is None
    assert lines == [
        "[sdar] round 0: update: cached checkpoint damaged "
        "(trainer_state/torch/optimizer.safetensors: sha256 mismatch), running it again"
    ]
    assert not task.exists() and not (root / ".kfp_cache" / "key.json").exists()
    assert type(kfp_cache.get_local_cache()) is kfp_cache.LocalCache  # the hook is gone


def test_without_the_hook_kfp_reuses_the_damaged_hit(kfp_cache_with_a_checkpoint):
    # what the hook is for: kfp.local alone only checks that the files exist
    _, task = kfp_cache_with_a_checkpoint
    _garble(task / "checkpoint" / "model.safetensors")
    assert kfp_cache.get_local_cache().get("key") is not None


def test_unfinished_task_folders_are_removed_and_said_in_one_line(tmp_path):
    root = tmp_path / "pipeline_root"
    finished = root / "run-a" / "generate-rollouts"
    killed = root / "run-a" / "sdar-update"
    failed_run = root / "run-b" / "evaluate"
    for folder in (finished, killed / "checkpoint" / "trainer_state", failed_run):
        folder.mkdir(parents=True)
    (finished / "executor_output.json").write_text("{}")
    (killed / "checkpoint" / "model.safetensors").write_bytes(b"\0" * 2_000_000)
    (root / ".kfp_cache").mkdir()
    (root / ".kfp_cache" / ".kfp_cache_x.tmp").write_text("{")
    lines: list[str] = []
    removed = remove_unfinished(root, notify=lines.append)
    assert removed == [killed, failed_run]
    assert finished.is_dir() and not (root / "run-b").exists()
    assert not list((root / ".kfp_cache").iterdir())
    assert lines == [
        "[sdar] removed 2 task folder(s) that killed or failed attempts left half written "
        "(2.0 MB; never reused): sdar-update, evaluate"
    ]
    assert remove_unfinished(root, notify=lines.append) == [] and len(lines) == 1
