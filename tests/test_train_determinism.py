"""Two updates with the same settings, each in its own process (as two pipeline runs), write
byte-identical checkpoints: every file, the trainer state (with its saved RNG state) and
metrics.json included. Torch seeds its CPU generator from the OS in every new process, so this
only holds because the update seeds it (sdar_core/train/state.py `seed_global_rng`)."""

import subprocess
import sys

UPDATE = """
import sys
from sdar_core.train import UpdateConfig, sdar_update
model, traj, out = sys.argv[1:]
sdar_update(model, traj, out, UpdateConfig(algorithm="grpo", lr=3e-3, mini_batch_size=None),
            ref_model_dir=model)
"""


def test_two_identical_updates_write_the_same_bytes(
    tmp_path, tiny_model_dir, make_scored_trajectories
):
    trajectories = make_scored_trajectories(tmp_path / "traj", seed=1)
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        command = [sys.executable, "-c", UPDATE, str(tiny_model_dir), str(trajectories), str(out)]
        subprocess.run(command, check=True, capture_output=True, cwd=tmp_path)
    files = [
        {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} for out in outs
    ]
    assert "trainer_state/torch/optimizer.safetensors" in {str(p) for p in files[0]}
    assert files[0].keys() == files[1].keys()
    differing = [str(p) for p in files[0] if files[0][p] != files[1][p]]
    assert differing == []
