"""A run killed during its update resumes: the re-run runs only the unfinished tasks, into the same
MLflow run, which ends KILLED when killed and FINISHED when the re-run completes. About 1.5
minutes on 2 CPU cores (each task is a fresh Python process)."""

import re
import signal
import subprocess
import sys

import pytest
from conftest import tiny_run_config

from pipelines.local import run_local
from sdar_core.tracking.store import client

pytestmark = pytest.mark.slow
# the runner prints "[sdar] task <name>" as it starts each task (kfp's own lines go to the log)
TASK = re.compile(r"\[sdar\] task (?P<name>[a-z0-9-]+)")


def _history_steps(mlflow_client, run_id: str, name: str) -> list[int]:
    return sorted(p.step for p in mlflow_client.get_metric_history(run_id, name))


def test_a_run_killed_during_the_update_resumes_with_every_finished_stage(tmp_path, tiny_model_dir):
    out = tmp_path / "run"
    config = tiny_run_config(out, tiny_model_dir)
    config_file = tmp_path / "run.json"
    config_file.write_text(config.model_dump_json())
    killed = subprocess.Popen(
        [sys.executable, "-m", "sdar_core.cli", "run", "--config", str(config_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    started = []
    for line in killed.stdout:  # the runner announces each task as it starts it
        if found := TASK.search(line):
            started.append(found["name"])
            if found["name"] == "sdar-update":
                break
    killed.send_signal(signal.SIGTERM)  # as `kill PID`: the runner alone, not its task
    tail = killed.stdout.read()
    assert killed.wait(timeout=120) == 128 + signal.SIGTERM, tail
    assert "marked KILLED; run the same command again to resume" in tail
    finished = set(started[:-1]) - {"importer", "importer-2"}  # importers run every time
    assert {"start-tracking", "index-skills", "generate-rollouts", "score-teacher"} <= finished

    mlflow_client = client(config.resolved_tracking_uri())
    experiment = mlflow_client.get_experiment_by_name(config.experiment)
    (run,) = mlflow_client.search_runs([experiment.experiment_id])
    assert run.info.status == "KILLED"
    assert "update/duration_s" not in run.data.metrics

    resumed = run_local(config)
    # the re-run's task records: every task that had finished was reused, the rest ran
    all_tasks = {*finished, "evaluate", "sdar-update", "evaluate-2"}
    assert set(resumed.executed) == all_tasks - finished
    assert "sdar-update" in resumed.executed
    assert resumed.run_id == run.info.run_id and resumed.run_name == run.info.run_name
    assert mlflow_client.get_run(run.info.run_id).info.status == "FINISHED"
    for name in ("index/duration_s", "rollout/duration_s", "teacher/duration_s"):
        assert _history_steps(mlflow_client, run.info.run_id, name) == [0], name  # ran once
    assert _history_steps(mlflow_client, run.info.run_id, "update/duration_s") == [0]
    assert _history_steps(mlflow_client, run.info.run_id, "eval/duration_s") == [0, 1]

    again = run_local(config)  # a finished run: everything is reused
    assert again.executed == () and again.run_id == run.info.run_id
