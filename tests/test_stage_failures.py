"""A stage that fails on bad input ends its task at once: under the embedded runner its retry
policy is not spent (one attempt, no back-off) and `sdar run` ends with the stage's one line and
the log path; a flaky failure is still retried. Attempts are counted in a file each attempt
appends to, not by elapsed time."""

import subprocess
import sys

import pytest
from kfp import dsl, local

from pipelines.task_failures import StageFailed, stopping_at_failures
from sdar_core.errors import ArtifactError, ConfigError, SdarError
from sdar_core.retrieval.client import RetrievalError, RetrievalRejected
from sdar_core.run.failures import failure_line


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def failing(attempts: str, kind: str, fail_times: int) -> str:
    """Appends a line to `attempts` per attempt; raises `kind` on the first `fail_times`."""
    from pathlib import Path

    from sdar_core.errors import ArtifactError
    from sdar_core.run.failures import stage_failures

    log = Path(attempts)
    with log.open("a") as out:
        out.write("attempt\n")
    with stage_failures("failing", 1):
        if len(log.read_text().splitlines()) <= fail_times:
            if kind == "bad input":
                raise ArtifactError(f"{log.parent}/x.json is truncated: re-run the stage")
            raise ConnectionResetError("the server went away")
    return "done"


@dsl.pipeline
def one_task(attempts: str, kind: str, fail_times: int) -> str:
    task = failing(attempts=attempts, kind=kind, fail_times=fail_times)
    task.set_retry(num_retries=3, backoff_duration="0s", backoff_factor=1.0)
    task.set_caching_options(False)
    return task.output


def _run(tmp_path, kind: str, fail_times: int):
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(tmp_path / "root"),
        raise_on_error=True,
    )
    attempts = tmp_path / "attempts"
    log_path = tmp_path / "run.log"
    try:
        with stopping_at_failures(log_path):
            return one_task(attempts=str(attempts), kind=kind, fail_times=fail_times)
    finally:
        tries = len(attempts.read_text().splitlines())
        print(f"{tries} attempt(s)")


def test_bad_input_is_not_retried(tmp_path, capsys):
    with pytest.raises(StageFailed) as failed:
        _run(tmp_path, "bad input", fail_times=4)
    assert capsys.readouterr().out.endswith("1 attempt(s)\n")  # retries allowed 3 more
    assert str(failed.value) == (
        f"failing round 1 failed: {tmp_path}/x.json is truncated: re-run the stage"
    )
    assert failed.value.bad_input and failed.value.log_path == tmp_path / "run.log"


def test_a_flaky_failure_is_still_retried(tmp_path, capsys):
    assert _run(tmp_path, "flaky", fail_times=2).output == "done"
    assert capsys.readouterr().out.endswith("3 attempt(s)\n")


@pytest.mark.parametrize(
    ("err", "expected"),
    [
        (ArtifactError("model.safetensors is truncated: re-run"), True),
        (ConfigError("rounds must be >= 0"), True),
        (RetrievalRejected("retrieval server rejected the request with HTTP 422"), True),
        (TypeError("f() got an unexpected keyword 'x'"), False),
        (ModuleNotFoundError("No module named 'vllm'"), False),
        (RetrievalError("retrieval server at http://x failed after 4 attempt(s)"), None),
        (ConnectionResetError("reset by peer"), None),
        (RuntimeError("CUDA error: an illegal memory access was encountered"), None),
        (MemoryError(), None),
        (subprocess.CalledProcessError(1, ["deepspeed"]), None),
    ],
)
def test_what_no_retry_fixes(err, expected):
    found = failure_line(err)
    if expected is None:
        assert found is None  # retried
    else:
        text, bad_input = found
        assert bad_input is expected
        assert str(err) in text and "\n" not in text
        assert isinstance(err, SdarError) == bad_input


@pytest.mark.slow
def test_sdar_run_ends_with_the_stage_line_and_the_log(
    tmp_path, tiny_model_dir, alfworld_games_dir
):
    """An evaluation-only run on a garbled game: evaluate (a retried stage) runs once, and the
    output ends with its one line and the log path, exit 2. About 40 s on 2 CPU cores."""
    import shutil

    out = tmp_path / "run"
    shutil.copytree(tiny_model_dir, out / "model")  # reused by prepare_inputs
    games = tmp_path / "games"
    shutil.copytree(alfworld_games_dir, games)
    (game,) = games.glob("valid_seen/*/*/traj_data.json")
    game.write_text(game.read_text()[:100])  # cut mid-string
    config = tmp_path / "run.json"
    config.write_text(
        '{"world": "alfworld", "algorithm": "vanilla", "rounds": 0, "n_valid_games": 1, '
        '"eval": {"max_steps": 2, "max_new_tokens": 8, "show_progress": false}}'
    )
    command = ["run", "--config", str(config), "--out-dir", str(out), "--data", str(games)]
    done = subprocess.run(
        [sys.executable, "-m", "sdar_core.cli", *command], capture_output=True, text=True
    )
    assert done.returncode == 2, done.stdout + done.stderr
    (log_path,) = (out / "logs").glob("*.log")
    error, where = done.stderr.splitlines()  # nothing else: no kfp traceback
    assert error.startswith(
        f"error: evaluate round 0 failed: game folder {game.parent}: traj_data.json is not "
        "readable JSON ("
    )
    assert where == f"the stage's traceback is in the task log: {log_path}"
    assert done.stdout.count("[sdar] task evaluate") == 1
    assert log_path.read_text().count("Executing task \x1b[96m'evaluate'") == 1  # one attempt
