"""`sdar replicate` on this machine: sdar_core.run.replicate with the embedded runner.

The replicate's orchestration lives in sdar_core (tested with a fake runner); what runs each
pipeline is `run_local` (kfp.local), which belongs to this package: sdar_core never imports
pipelines/, the command hands the runner in.
"""

from collections.abc import Callable, Sequence

from pipelines.local import run_local
from sdar_core.run.arms import Arm
from sdar_core.run.config import RunConfig
from sdar_core.run.replicate import ReplicateResult, replicate

__all__ = ["replicate_local"]


def replicate_local(
    base: RunConfig,
    *,
    arms: Sequence[Arm],
    seeds: Sequence[int],
    level: float,
    on_run: Callable[[str], None] = print,
) -> ReplicateResult:
    """The replicate (sdar_core.run.replicate), each pipeline run embedded (`run_local`)."""
    return replicate(base, runner=run_local, arms=arms, seeds=seeds, level=level, on_run=on_run)
