"""Data-parallel updates (sdar_core/train/parallel.py): two DeepSpeed ranks on CPU (gloo), each
running its share of the micro-batches (and of the reference log-prob pass, shared between the
ranks afterwards), give the single-process PyTorch update and metrics; the
micro-batch sharding pads short ranks with zero-weight passes; the torch backend refuses to run
under a multi-process launcher."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sdar_core.errors import ConfigError
from sdar_core.train import UpdateConfig, parallel, sdar_update
from sdar_core.train.parallel import rank_and_size, shard, sum_over_ranks

pytest.importorskip("deepspeed")

RANK_SCRIPT = Path(__file__).parent / "scripts" / "ds_update_rank.py"
# 8 samples in mini-batches of 3, 3, 2 with one sample per micro-batch (a 1-token budget): rank 0
# runs 2, 2, 1 micro-batches and rank 1 runs 1, 1, 1 plus a zero-weight pass in the first two steps
MINI_BATCH, MICRO_TOKENS = 3, 1


def _config(backend: str = "torch", stage: int = 2) -> UpdateConfig:
    # the settings of tests/test_train_deepspeed.py: SGD, no clipping, no shuffling
    return UpdateConfig(
        algorithm="sdar",
        backend=backend,
        zero_stage=stage,
        lr=0.05,
        optimizer="sgd",
        weight_decay=0.0,
        mini_batch_size=MINI_BATCH,
        micro_batch_tokens=MICRO_TOKENS,
        max_grad_norm=None,
        shuffle=False,
    )


@pytest.fixture(scope="module")
def scored(make_scored_trajectories, tmp_path_factory):
    return make_scored_trajectories(tmp_path_factory.mktemp("dp_scored") / "t", seed=4)


@pytest.fixture(scope="module")
def single_process(tiny_model_dir, scored, tmp_path_factory):
    out = tmp_path_factory.mktemp("dp_torch") / "out"
    metrics = sdar_update(tiny_model_dir, scored, out, _config())
    return metrics, load_file(out / "model.safetensors")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_ranks(model: Path, scored: Path, out: Path, stage: int, tmp: Path) -> dict:
    env = os.environ | {
        "OMP_NUM_THREADS": "1",
        "TORCH_EXTENSIONS_DIR": str(tmp / "ext"),
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent.parent), *sys.path]),
    }
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_port", str(_free_port()), str(RANK_SCRIPT), str(model), str(scored),
        str(out), _config("deepspeed", stage).model_dump_json(),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((out / "metrics.json").read_text())  # written by rank 0


@pytest.mark.parametrize("stage", [2, 3])
def test_two_deepspeed_ranks_match_one_pytorch_process(
    tiny_model_dir, scored, single_process, tmp_path, stage
):
    expected_metrics, expected = single_process
    metrics = _two_ranks(tiny_model_dir, scored, tmp_path / "out", stage, tmp_path)
    weights = load_file(tmp_path / "out" / "model.safetensors")
    start = load_file(tiny_model_dir / "model.safetensors")
    largest = max((expected[k] - start[k]).abs().max().item() for k in expected)
    assert largest > 1e-3  # the update moved the weights
    for name, value in expected.items():
        torch.testing.assert_close(weights[name], value, rtol=0, atol=1e-5 * largest)
    # metrics summed over the ranks are the single process's, not twice or half of them
    for name in ("loss", "pg_loss", "kl_loss", "sdar/loss", "sdar/gate_mean", "teacher_gap"):
        assert metrics[name] == pytest.approx(expected_metrics[name], rel=1e-5, abs=1e-7)
    assert metrics["steps"] == expected_metrics["steps"] == 3.0


def test_shard_gives_every_item_once_and_equal_counts():
    items = list(range(7))
    shards = [shard(items, rank=r, size=3) for r in range(3)]
    assert shards == [[0, 3, 6], [1, 4, None], [2, 5, None]]
    assert sorted(i for s in shards for i in s if i is not None) == items
    assert shard(items, rank=0, size=1) == items
    assert shard([1], rank=1, size=2) == [None]


def test_rank_and_size_without_and_with_a_launcher(monkeypatch):
    assert sum_over_ranks({"a": 1.5}, size=1) == {"a": 1.5}
    if torch.distributed.is_initialized():  # a DeepSpeed test started a one-rank group here
        assert rank_and_size() == (0, 1)
        return
    for name in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert rank_and_size() == (0, 1)
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert rank_and_size() == (3, 4)


def test_torch_backend_refuses_a_multi_process_launch(
    tiny_model_dir, scored, tmp_path, monkeypatch
):
    # as rank 0 of 2 (patched: another test may have started a one-rank group in this process)
    monkeypatch.setattr(parallel, "rank_and_size", lambda: (0, 2))
    with pytest.raises(ConfigError, match="backend='deepspeed'"):
        sdar_update(tiny_model_dir, scored, tmp_path / "out", _config())
    assert not (tmp_path / "out").exists()


def test_the_launched_update_hands_its_timings_to_the_task(tiny_model_dir, scored, tmp_path):
    # the checkpoint's metrics.json leaves wall-clock figures out (same settings, same bytes), so
    # rank 0 writes the whole metrics where the task that launched it reads them
    from sdar_core.run.launch_update import METRICS_ENV, main

    handed = tmp_path / "metrics.json"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(METRICS_ENV, str(handed))
        main([str(tiny_model_dir), str(scored), str(tmp_path / "out"), _config().model_dump_json()])
    metrics = json.loads(handed.read_text())
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert "train_seconds" in metrics and "train_seconds" not in saved
    assert metrics["loss"] == saved["loss"]
