"""Long-lived run workers (pipelines/run_worker.py's RunWorkers): one process serves run after
run, a run that fails is reported with its output file and the process serves the next, and a
process that died is replaced. The runs here fail at their set-up (a model folder without its
config), so each takes seconds; tests/test_replicate_workers.py runs whole pipelines through it."""

import re

import psutil
import pytest
from conftest import tiny_run_config

from pipelines.run_worker import RunWorkers, WorkerFailed


def _serving() -> list[psutil.Process]:
    return [p for p in psutil.Process().children() if "--serve" in p.cmdline()]


def _worker_of(output) -> tuple[int, int]:
    found = re.match(r"worker process (\d+), its run (\d+)", output.read_text())
    assert found, output.read_text()[:200]
    return int(found[1]), int(found[2])


def test_one_process_serves_runs_one_after_another(tmp_path, tiny_model_dir):
    base = tiny_run_config(tmp_path, tiny_model_dir)
    (tmp_path / "model" / "config.json").unlink()  # every run fails at its set-up
    configs = [base.with_seed(seed) for seed in (0, 1, 2)]
    outputs = []
    with RunWorkers(1, threads=1, log_dir=tmp_path / "logs") as workers:
        for config in configs[:2]:
            with pytest.raises(
                WorkerFailed, match="failed with an error: .*cannot build a model"
            ) as err:
                workers(config)
            outputs.append(tmp_path / "logs" / re.search(r"worker-[^ ]+\.out", str(err.value))[0])
        (process,) = _serving()
        process.kill()
        process.wait()
        with pytest.raises(WorkerFailed) as err:
            workers(configs[2])
        outputs.append(tmp_path / "logs" / re.search(r"worker-[^ ]+\.out", str(err.value))[0])
        (replacement,) = _serving()
    assert [_worker_of(o) for o in outputs] == [
        (process.pid, 1), (process.pid, 2), (replacement.pid, 1)
    ]  # fmt: skip
    assert all("Traceback" in o.read_text() for o in outputs)
    assert not replacement.is_running() or replacement.status() == psutil.STATUS_ZOMBIE
    assert (tmp_path / "logs" / "worker-0.log").is_file()
