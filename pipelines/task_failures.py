"""The embedded run stops at a stage's failure that no retry fixes instead of retrying it.

kfp.local retries a task whose retry policy allows it whatever made an attempt fail: its loop
(kfp/local/orchestrator/task_executor.py, `execute_single_task`) sees only SUCCESS or FAILURE
from `task_dispatcher.run_single_task_implementation`, never the exit status, and sleeps the
back-off between attempts (30, 60, 120 s for the retried stages, pipelines/profiles.py). A stage
that fails on bad input (sdar_core/run/failures.py) writes a record of its one-line error into
the folder named by `SDAR_STAGE_ERRORS`; while the embedded run runs, `stopping_at_failures`
points that variable at a fresh folder and wraps kfp.local's one-attempt function (the only hook
kfp.local has between attempts) so that a failed attempt that left a record raises
`StageFailed` at once: no further attempt, no back-off, and the run ends with the stage's line.
The wrapper is removed when the block ends.

On a KFP cluster nothing reads the record: the backend turns the retry policy into an Argo
`retryStrategy` (a limit and a back-off, no exit-status condition), so a retried stage's
deterministic failure is still retried there (README "Retries").
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kfp.local import status, task_dispatcher

from sdar_core.run.failures import ERRORS_ENV, read_failures

__all__ = ["StageFailed", "stopping_at_failures"]


class StageFailed(Exception):  # noqa: N818 - names what happened, like KeyboardInterrupt
    """A stage failed in a way no retry fixes; the message is the stage's one line."""

    def __init__(self, message: str, *, bad_input: bool, log_path: Path | None) -> None:
        super().__init__(message)
        self.bad_input = bad_input  # bad input (exit 2 at the CLI) rather than a bug
        self.log_path = log_path  # the run's log file, with the stage's traceback


@contextlib.contextmanager
def stopping_at_failures(log_path: Path | None = None) -> Iterator[None]:
    """While the block runs, a task attempt that records a failure raises `StageFailed` (module
    docstring); `log_path` is the run's log, named by the error."""
    run_one = task_dispatcher.run_single_task_implementation
    previous = os.environ.get(ERRORS_ENV)
    with tempfile.TemporaryDirectory(prefix="sdar-stage-errors-") as folder:

        def run_attempt(*args: Any, **kwargs: Any) -> Any:
            outputs, task_status = run_one(*args, **kwargs)
            if task_status == status.Status.FAILURE and (found := read_failures(folder)):
                last = found[-1]
                raise StageFailed(last["message"], bad_input=last["bad_input"], log_path=log_path)
            return outputs, task_status

        os.environ[ERRORS_ENV] = folder  # the tasks inherit this process's environment
        task_dispatcher.run_single_task_implementation = run_attempt
        try:
            yield
        finally:
            task_dispatcher.run_single_task_implementation = run_one
            if previous is None:
                os.environ.pop(ERRORS_ENV, None)
            else:
                os.environ[ERRORS_ENV] = previous
