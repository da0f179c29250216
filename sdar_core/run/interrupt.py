"""The embedded run's MLflow run never stays RUNNING after the run dies.

`closing_mlflow_run(...)` wraps the pipeline call of `sdar run`: SIGTERM and SIGINT (Ctrl-C,
`kill PID`) stop the task subprocesses this process started, raise `RunInterrupted`, and the
MLflow run ends KILLED; any other error ends it FAILED (try/finally). SIGKILL cannot be caught:
its run stays RUNNING until the next `sdar run` with the same settings resumes it, and
`sdar compare` leaves it out in the meantime (it counts finished runs only). A re-run of a
FINISHED run marks it RUNNING again (pipelines.local), so that its status is always the latest
attempt's: a re-run that fails leaves it FAILED, not FINISHED.

The task subprocesses are stopped by this process itself because `kill PID` reaches only the
parent, and Python's subprocess waits for a child to exit before it lets an exception through;
without that, a 10-minute stage would run to its end after the run was killed.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = ["RunInterrupted", "closing_mlflow_run", "stop_children", "stopping_on_signals"]

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class RunInterrupted(BaseException):  # noqa: N818 - like KeyboardInterrupt, not an error
    """The run received SIGTERM or SIGINT. A BaseException, so that no `except Exception` in a
    library between the signal and the runner swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The shell's exit status of a process killed by this signal (128 + number)."""
        return 128 + self.signum


def stop_children(timeout_s: float = 10.0) -> None:
    """Terminate every process this one started (recursively); kill those still alive after
    `timeout_s`."""
    import psutil

    children = psutil.Process().children(recursive=True)
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.terminate()
    _, alive = psutil.wait_procs(children, timeout=timeout_s)
    for child in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()


def _raise_interrupted(signum: int, frame: object) -> None:
    stop_children()
    raise RunInterrupted(signum)


@contextlib.contextmanager
def stopping_on_signals() -> Iterator[None]:
    """SIGTERM and SIGINT stop the children and raise `RunInterrupted` inside the block, so that
    its `finally` clauses run (the default SIGTERM action ends the process without them)."""
    handlers = {}
    if threading.current_thread() is threading.main_thread():  # signals reach the main thread
        handlers = {sig: signal.signal(sig, _raise_interrupted) for sig in _SIGNALS}
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def closing_mlflow_run(tracking_uri: str, experiment: str, run_name: str) -> Iterator[None]:
    """End the MLflow run(s) named `run_name` KILLED on SIGTERM / SIGINT, FAILED on an error,
    when the block does not finish (module docstring). The block itself marks success."""
    from sdar_core.tracking.store import end_runs_named

    with stopping_on_signals():
        try:
            yield
        except RunInterrupted:
            end_runs_named(tracking_uri, experiment, run_name, status="KILLED")
            raise
        except BaseException:
            end_runs_named(tracking_uri, experiment, run_name, status="FAILED")
            raise
