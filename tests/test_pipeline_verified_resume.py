"""A resumed run checks what it reuses: after a finished tiny run (GRPO, one round), a damaged final
weights file or trajectories file makes its task run again (with the tasks after it), said in
one line, instead of "all reused"; the task folders a killed attempt left half written are
removed on resume. One tiny run for the module, then one resume per test: about 2.5 minutes on
2 CPU cores (each task is a fresh Python process)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from conftest import tiny_run_config

from pipelines.local import run_local
from sdar_core.run import RunConfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_model_dir):
    """A finished run's config; the tests resume it one after the other."""
    out = tmp_path_factory.mktemp("verified") / "run"
    config = tiny_run_config(out, tiny_model_dir, algorithm="grpo")  # no teacher: shortest round
    first = run_local(config)
    assert "sdar-update" in first.executed
    return config


def _only(pattern: str, config: RunConfig) -> Path:
    (path,) = (config.out_dir / "pipeline_root").glob(pattern)
    return path


def _garble(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    path.write_bytes(bytes(data))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_damaged_final_weights_are_run_again_not_reused(finished, capsys):
    weights = _only("*/sdar-update/checkpoint/model.safetensors", finished)
    saved = _sha256(weights)
    _garble(weights)
    capsys.readouterr()
    resumed = run_local(finished)
    out = capsys.readouterr().out
    assert set(resumed.executed) == {"sdar-update", "evaluate-2"}
    assert (
        "[sdar] round 0: update: cached checkpoint damaged (model.safetensors: sha256 mismatch), "
        "running it again"
    ) in out.splitlines()
    # the update ran again from the same inputs: the same weights as before the damage
    assert _sha256(_only("*/sdar-update/checkpoint/model.safetensors", finished)) == saved


def test_damaged_trajectories_are_run_again_with_the_stages_after_them(finished, capsys):
    _garble(_only("*/generate-rollouts/trajectories/data.parquet", finished))
    capsys.readouterr()
    resumed = run_local(finished)
    out = capsys.readouterr().out
    assert set(resumed.executed) == {"generate-rollouts", "sdar-update", "evaluate-2"}
    assert (
        "[sdar] round 0: rollouts: cached trajectories damaged (data.parquet: sha256 mismatch), "
        "running it again"
    ) in out.splitlines()


def test_a_killed_attempts_half_written_folder_is_removed_on_resume(finished, capsys):
    run = _only("*/generate-rollouts", finished).parent
    killed = run.with_name(run.name + "-killed") / "sdar-update"  # no executor_output.json
    (killed / "checkpoint").mkdir(parents=True)
    (killed / "checkpoint" / "model.safetensors").write_bytes(b"\0" * 1_500_000)
    capsys.readouterr()
    resumed = run_local(finished)
    out = capsys.readouterr().out
    assert resumed.executed == ()
    assert not killed.parent.exists()
    assert (
        "[sdar] removed 1 task folder(s) that killed or failed attempts left half written "
        "(1.5 MB; never reused): sdar-update"
    ) in out.splitlines()
