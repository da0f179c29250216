"""The embedded runner's MLflow run ends KILLED on SIGTERM / SIGINT (its task processes stopped)
and FAILED on an error, never RUNNING."""

import signal
import subprocess
import sys

import pytest

from sdar_core.run.interrupt import RunInterrupted, closing_mlflow_run
from sdar_core.tracking import start_run
from sdar_core.tracking.store import client, sqlite_uri

# a runner with one long task process; it sends itself the signal while the task runs
RUNNER = """
import os, signal, subprocess, sys
from sdar_core.run.interrupt import closing_mlflow_run
task = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(task.pid, flush=True)
with closing_mlflow_run(sys.argv[1], "e", sys.argv[2]):
    os.kill(os.getpid(), getattr(signal, sys.argv[2]))  # the run is named after the signal
    task.wait()
"""


@pytest.fixture(scope="module")
def uri(tmp_path_factory):
    return sqlite_uri(tmp_path_factory.mktemp("mlflow") / "mlflow.db")


@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_tasks_and_ends_the_run_killed(uri, name):
    run_id = start_run(uri, "e", run_name=name, params={})
    runner = subprocess.run(
        [sys.executable, "-c", RUNNER, uri, name], capture_output=True, text=True, timeout=120
    )
    assert "RunInterrupted: interrupted by " + name in runner.stderr
    task_pid = int(runner.stdout.split()[0])
    assert subprocess.run(["kill", "-0", str(task_pid)], capture_output=True).returncode != 0
    assert client(uri).get_run(run_id).info.status == "KILLED"


def test_an_error_ends_the_run_failed_and_restores_the_handlers(uri):
    run_id = start_run(uri, "e", run_name="error", params={})
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(RuntimeError), closing_mlflow_run(uri, "e", "error"):
        raise RuntimeError("a stage failed")
    assert client(uri).get_run(run_id).info.status == "FAILED"
    assert signal.getsignal(signal.SIGTERM) is before


def test_the_exit_code_is_the_shells():
    assert RunInterrupted(signal.SIGTERM).exit_code == 143


def test_a_failed_rerun_of_a_finished_run_ends_failed(uri):
    # a re-run resumes the FINISHED run of the same settings by name; its status is the latest
    # attempt's: RUNNING while it runs, FAILED when a stage fails
    from pipelines.local import _run_name

    run_id = start_run(uri, "e", run_name="pipe-key-20260101-000000", params={})
    client(uri).set_terminated(run_id)
    name = _run_name("pipe-key", uri, "e", resume=True)
    assert name == "pipe-key-20260101-000000"
    assert client(uri).get_run(run_id).info.status == "RUNNING"
    with pytest.raises(RuntimeError), closing_mlflow_run(uri, "e", name):
        raise RuntimeError("a damaged input")
    assert client(uri).get_run(run_id).info.status == "FAILED"
