"""Warm task processes (pipelines/warm_tasks.py): kfp.local's tasks run in children forked from a
server that imported torch once, with the task's environment, output and exit status; a server
that is gone leaves the task to a fresh process; and a whole embedded run gives the same outputs,
byte for byte, with and without them."""

import json
from pathlib import Path

import pytest
from kfp import dsl, local

from pipelines.warm_tasks import shared_warm_server, task_source, warm_tasks


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def probe(word: str) -> str:
    import json
    import os
    import random
    import sys

    print(f"probe says {word}")
    return json.dumps(
        {
            "warm": "torch" in sys.modules,  # a fresh process has not imported it
            "marker": os.environ.get("SDAR_WARM_TASKS_TEST"),
            "kfp_runtime": os.environ.get("_KFP_RUNTIME"),
            "cwd": os.getcwd(),
            "random": random.random(),
            "parent": os.getppid(),  # the warm server, which forked it
        }
    )


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def fails():
    raise ValueError("this component fails")


@pytest.fixture
def kfp_local(tmp_path):
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(tmp_path / "root"),
        raise_on_error=True,
    )
    return tmp_path


def test_a_task_runs_warm_with_its_environment_and_output(kfp_local, monkeypatch, capsys):
    with warm_tasks(kfp_local / "server.log"):
        monkeypatch.setenv("SDAR_WARM_TASKS_TEST", "set after the server started")
        first = json.loads(probe(word="hello").output)
        second = json.loads(probe(word="again").output)
    assert first["warm"] and second["warm"]
    assert first["marker"] == "set after the server started"
    assert first["kfp_runtime"] == "true"
    assert first["cwd"] == str(Path.cwd())
    assert first["random"] != second["random"]  # each child re-seeded, as a fresh process
    out = capsys.readouterr().out
    assert "probe says hello" in out and "probe says again" in out


def test_without_the_block_tasks_run_fresh(kfp_local):
    assert not json.loads(probe(word="cold").output)["warm"]


def test_a_failing_task_fails_and_the_server_serves_the_next(kfp_local, capsys):
    with warm_tasks(kfp_local / "server.log"):
        with pytest.raises(RuntimeError, match="fails"):
            fails()
        assert "ValueError: this component fails" in capsys.readouterr().out
        assert json.loads(probe(word="after").output)["warm"]


def test_a_dead_server_leaves_tasks_to_fresh_processes(kfp_local):
    with warm_tasks(kfp_local / "server.log") as server:
        server.kill()
        server.wait()
        with pytest.warns(RuntimeWarning, match="warm task server is not running"):
            result = json.loads(probe(word="fallback").output)
    assert not result["warm"]


def test_a_shared_server_serves_every_block_of_the_process(kfp_local):
    with shared_warm_server(kfp_local / "shared.log") as server:
        with warm_tasks(kfp_local / "run1.log") as used_first:
            first = json.loads(probe(word="one").output)
        assert server.poll() is None  # a run's block leaves the shared server running
        with warm_tasks(kfp_local / "run2.log") as used_second:
            second = json.loads(probe(word="two").output)
        with pytest.raises(RuntimeError, match="already running"):
            with shared_warm_server(kfp_local / "another.log"):
                pass
    assert used_first is used_second is server
    assert first["warm"] and first["parent"] == second["parent"] == server.pid
    assert server.poll() is not None  # stopped with the shared block
    assert not (kfp_local / "run1.log").exists()  # no server of its own
    assert not json.loads(probe(word="after").output)["warm"]


def test_other_commands_are_not_taken():
    assert task_source(["sh", "-c", "echo hi"]) is None
    assert task_source(["python3", "-m", "kfp.dsl.executor_main"]) is None


# what a run's numbers come from: trajectories, scores, the trained weights and optimizer state,
# the evaluations (the skill index is left out: bm25s numbers its vocabulary in set order, which
# differs between any two processes with their own hash seeds)
OUTPUTS = (
    "generate-rollouts/trajectories/data.parquet",
    "score-teacher/scored_trajectories/data.parquet",
    "sdar-update/checkpoint/model.safetensors",
    "sdar-update/checkpoint/metrics.json",
    "sdar-update/checkpoint/trainer_state/trainer_state.json",
    "sdar-update/checkpoint/trainer_state/torch/optimizer.safetensors",
    "evaluate/results",
    "evaluate-2/results",
)


def _outputs(out_dir: Path) -> dict[str, bytes]:
    """The files of OUTPUTS, with the run folder's path (timestamped) and the out-dir's taken
    out of their text."""
    (run,) = [p for p in (out_dir / "pipeline_root").iterdir() if not p.name.startswith(".")]
    return {
        name: (run / name)
        .read_bytes()
        .replace(str(run).encode(), b"<run>")
        .replace(str(out_dir).encode(), b"<out>")
        for name in OUTPUTS
    }


@pytest.mark.slow
def test_an_embedded_run_gives_the_same_outputs_warm_and_fresh(tmp_path, tiny_model_dir):
    from conftest import tiny_run_config

    from pipelines.local import run_local

    outputs = {}
    for warm in (True, False):
        out = tmp_path / ("warm" if warm else "fresh")
        config = tiny_run_config(
            out, tiny_model_dir, algorithm="sdar", rounds=1, eval_every=None, warm_tasks=warm
        )
        run_local(config)
        outputs[warm] = _outputs(out)
    for name in OUTPUTS:
        assert outputs[True][name] == outputs[False][name], name
