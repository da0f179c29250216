"""A fresh MLflow store is created once: two processes that prepare the same fresh store at the
same moment both succeed, with one experiment (MLflow migrating one file from two processes
fails with "duplicate column name"). The processes start together on a pipe, not a sleep."""

import subprocess
import sys

from sdar_core.tracking.store import client, sqlite_uri

# imports MLflow, says it is ready, waits for "go", then prepares the store and its experiment
PREPARE = """
import sys
import mlflow.store.tracking.sqlalchemy_store
from sdar_core.tracking.store import prepare_experiment
print("ready", flush=True)
sys.stdin.readline()
print(prepare_experiment(sys.argv[1], "sdar", artifact_root=sys.argv[2]), flush=True)
"""


def test_two_processes_create_one_fresh_store(tmp_path):
    uri = sqlite_uri(tmp_path / "mlflow.db")
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", PREPARE, uri, str(tmp_path / "mlruns")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for process in processes:  # both have imported MLflow: the barrier
        assert process.stdout.readline() == "ready\n"
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()
    results = [process.communicate(timeout=300) for process in processes]
    for process, (_, err) in zip(processes, results, strict=True):
        assert process.returncode == 0, err[-2000:]
    ids = {out.strip() for out, _ in results}
    assert len(ids) == 1
    assert [e.name for e in client(uri).search_experiments()] == ["sdar", "Default"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db", "mlruns"]  # no temp file
