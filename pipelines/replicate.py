"""`sdar replicate` on this machine: sdar_core.run.replicate with the embedded runner.

The replicate's orchestration lives in sdar_core (tested with a fake runner); what runs each
pipeline is `run_local` (kfp.local), which belongs to this package: sdar_core never imports
pipelines/, the command hands the runner in.

With `workers` > 1, the pipeline runs go to `workers` long-lived worker processes
(pipelines/run_worker.py's RunWorkers: kfp.local is one per process), each running one after
another with an equal share of the cores as torch threads; the warm start, which runs before
them and alone, gets a process of its own with every core. This process holds the out-dir's
lock (the command takes it) and cleans the pipeline root once, before the first run; SIGTERM and
SIGINT stop every worker and its tasks (their MLflow runs end KILLED) and the replicate's parent
run ends KILLED.
"""

import functools
import os
from collections.abc import Callable, Sequence

from pipelines.cache import remove_unfinished
from pipelines.local import run_local
from pipelines.run_worker import RunWorkers, run_in_worker
from sdar_core.run.arms import Arm
from sdar_core.run.config import RunConfig
from sdar_core.run.interrupt import stopping_on_signals
from sdar_core.run.replicate import ReplicateResult, replicate

__all__ = ["replicate_local", "threads_per_worker"]


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Torch threads for each of `workers` runs at once: an equal share of the cores, at
    least one."""
    return max(1, (cores or os.cpu_count() or 1) // workers)


def replicate_local(
    base: RunConfig,
    *,
    arms: Sequence[Arm],
    seeds: Sequence[int],
    level: float,
    on_run: Callable[[str], None] = print,
    workers: int = 1,
) -> ReplicateResult:
    """The replicate (sdar_core.run.replicate), each pipeline run embedded (`run_local`), in
    this process or, with `workers` > 1, in worker processes (module docstring)."""
    if workers == 1:
        return replicate(base, runner=run_local, arms=arms, seeds=seeds, level=level, on_run=on_run)
    remove_unfinished(base.out_dir.resolve() / "pipeline_root")
    threads = threads_per_worker(workers)
    alone = functools.partial(run_in_worker, threads=threads_per_worker(1))
    logs = base.out_dir.resolve() / "logs"
    with stopping_on_signals(), RunWorkers(workers, threads=threads, log_dir=logs) as runner:
        return replicate(
            base, runner=runner, arms=arms, seeds=seeds, level=level, on_run=on_run,
            workers=workers, warm_runner=alone,
        )  # fmt: skip
