"""One run per out-dir: the lock refuses a second holder naming the first, takes over a lock whose
holder died, and is released on an error and on SIGTERM; `sdar run` is refused at once while
another run holds the out-dir. The lock is held by real child processes that say when they hold
it through a pipe (no sleeps)."""

import json
import os
import signal
import subprocess
import sys

import pytest

from sdar_core.run.lock import LOCK_NAME, OutDirBusy, lock_owner, out_dir_lock

# holds the lock, prints its PID when it does, exits when its stdin closes or a line arrives
HOLDER = """
import os, sys
from sdar_core.run.lock import out_dir_lock
with out_dir_lock(sys.argv[1]):
    print(os.getpid(), flush=True)
    sys.stdin.readline()
"""


@pytest.fixture
def holder(tmp_path):
    """Start a child that holds `tmp_path`'s lock; yields (process, its PID) once it holds it."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pid = int(process.stdout.readline())  # blocks until the child holds the lock
    yield process, pid
    if process.poll() is None:
        process.kill()
    process.wait()


def test_a_second_holder_is_refused_with_the_owner_named(tmp_path, holder):
    process, pid = holder
    with pytest.raises(OutDirBusy) as refused, out_dir_lock(tmp_path):
        pass
    message = str(refused.value)
    assert f"PID {pid}" in message and str(tmp_path / LOCK_NAME) in message
    assert "another --out-dir" in message and "\n" not in message
    assert lock_owner(tmp_path / LOCK_NAME)["pid"] == pid  # the refusal left the owner alone
    process.stdin.close()  # the holder ends normally and releases it
    assert process.wait() == 0
    assert not (tmp_path / LOCK_NAME).exists()
    with out_dir_lock(tmp_path) as path:
        assert lock_owner(path)["pid"] == os.getpid()
    assert not path.exists()


def test_the_lock_of_a_killed_run_is_taken_over_with_a_notice(tmp_path, holder, capsys):
    process, pid = holder
    process.kill()  # SIGKILL: no clean-up runs, the file still names the dead owner
    process.wait()
    assert lock_owner(tmp_path / LOCK_NAME)["pid"] == pid
    with out_dir_lock(tmp_path) as path:
        assert lock_owner(path)["pid"] == os.getpid()
    notice = capsys.readouterr().err.strip()
    assert notice.startswith(f"taking over the stale lock {path} of PID {pid}")
    assert "ended without releasing it" in notice and "\n" not in notice


def test_a_lock_from_an_earlier_boot_is_taken_over(tmp_path, capsys):
    record = {"pid": 1, "host": "h", "boot_id": "an-earlier-boot", "started": "then"}
    (tmp_path / LOCK_NAME).write_text(json.dumps(record))
    with out_dir_lock(tmp_path):
        pass
    assert "before this machine restarted" in capsys.readouterr().err


def test_the_lock_is_released_after_an_error_and_is_reentrant(tmp_path, capsys):
    with pytest.raises(RuntimeError), out_dir_lock(tmp_path), out_dir_lock(tmp_path):
        raise RuntimeError("a stage failed")
    assert not (tmp_path / LOCK_NAME).exists()
    child = subprocess.run(
        [sys.executable, "-c", HOLDER, str(tmp_path)], input="\n", capture_output=True, text=True
    )
    assert child.returncode == 0 and child.stderr == ""  # taken, and no stale notice


def test_sigterm_releases_the_lock(tmp_path, holder):
    process, _ = holder
    process.send_signal(signal.SIGTERM)
    assert process.wait() != 0
    assert "RunInterrupted: interrupted by SIGTERM" in process.stderr.read()
    assert not (tmp_path / LOCK_NAME).exists()  # released, not left for a takeover


def test_sdar_run_is_refused_while_another_run_holds_the_out_dir(tmp_path, holder, capsys):
    from sdar_core.cli import main

    _, pid = holder
    with pytest.raises(SystemExit) as exited:
        main(["run", "--out-dir", str(tmp_path), "--rounds", "1"])
    assert exited.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"error: {tmp_path} is in use by PID {pid}")
    assert os.listdir(tmp_path) == [LOCK_NAME]  # refused before the store or the model was made
