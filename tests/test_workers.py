"""sdar_core.workers: results in payload order, a worker's error re-raised in the parent (its own
type, chained to a WorkerError with the traceback), a worker that dies without a word, shard
arithmetic and worker counts. Kept free of heavy imports: each spawned worker imports this
module to find its target."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from sdar_core.errors import ConfigError
from sdar_core.workers import (
    WorkerError,
    blocks,
    resolve_workers,
    run_workers,
    shard_size,
    split_evenly,
    visible_gpus,
)


def _fail_on_second(value: int) -> int:
    if value == 2:
        raise ConfigError("value 2 is refused: pass another")
    return value * 10


def _exit_hard(value: int) -> int:
    if value == 1:
        os._exit(7)
    return value


def test_run_workers_keeps_order_and_reraises_the_error():
    assert run_workers(_fail_on_second, [1, 3], device="cpu") == [10, 30]
    with pytest.raises(ConfigError, match="value 2 is refused"):
        run_workers(_fail_on_second, [1, 2, 3], device="cpu")
    with pytest.raises(WorkerError, match="worker 1 of 2 exited with 7"):
        run_workers(_exit_hard, [0, 1], device="cpu")


def test_shards_and_worker_counts():
    assert split_evenly(5, 2) == [range(0, 3), range(3, 5)]
    assert split_evenly(2, 8) == [range(0, 1), range(1, 2)]  # never an idle worker
    assert blocks(5, 2) == [range(0, 2), range(2, 4), range(4, 5)]
    assert shard_size(16, None, 8) == 2 and shard_size(16, 4, 8) == 4
    assert shard_size(3, None, 2) == 2
    assert resolve_workers("auto", "cpu") == 1 and resolve_workers(3, "cpu") == 3
    with pytest.raises(ConfigError, match="pins one: set device to 'cuda'"):
        resolve_workers(2, "cuda:1")
    with pytest.raises(ConfigError, match="workers must be a count >= 1 or 'auto'"):
        resolve_workers(0, "cpu")


def test_configs_refuse_bad_worker_settings():
    from sdar_core.evaluation import EvalConfig
    from sdar_core.rollout import RolloutConfig
    from sdar_core.teacher import TeacherConfig

    for cls in (RolloutConfig, TeacherConfig, EvalConfig):
        with pytest.raises(ValidationError, match="workers must be a count >= 1 or 'auto'"):
            cls(workers=0)
        assert cls(workers="auto").workers == "auto"
    for cls in (RolloutConfig, TeacherConfig):
        with pytest.raises(ValidationError, match="shard_groups must be >= 1"):
            cls(shard_groups=0)


def test_visible_gpus_follow_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert visible_gpus() == ["3", "5"]
    assert resolve_workers("auto", "cuda") == 2 and resolve_workers("auto", "cuda:0") == 1
    with pytest.raises(ConfigError, match="only 2 GPUs are visible"):
        resolve_workers(3, "cuda")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert resolve_workers("auto", "cuda") == 1


def _visible(_: int) -> str:
    return os.environ.get("CUDA_VISIBLE_DEVICES", "")


def test_each_gpu_worker_sees_only_its_own_gpu(monkeypatch):
    """The per-GPU engines (vLLM or HF) rely on this: worker k's CUDA_VISIBLE_DEVICES is the
    k-th visible GPU, so its "cuda" device is that GPU (no GPU is touched here)."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert run_workers(_visible, [0, 1], device="cuda") == ["3", "5"]
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "3,5"  # the parent's is left as it was
    with pytest.raises(ConfigError, match="3 GPU workers but only 2 GPUs are visible"):
        run_workers(_visible, [0, 1, 2], device="cuda")


def test_a_killed_worker_keeps_the_retries_and_bad_input_does_not():
    from sdar_core.run.failures import failure_line

    assert failure_line(WorkerError("worker 1 of 2 was killed by signal 9")) is None
    assert failure_line(ConfigError("value 2 is refused: pass another")) is not None
