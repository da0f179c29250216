"""The games writer leaves no temporary folder behind, however it ends (an error, SIGTERM,
SIGINT), and refuses counts above their limits before it writes anything."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sdar_core.envs.alfworld import generate_games, generator
from sdar_core.errors import ConfigError

# a real generate_games whose second split stops (after the train games are written) until a
# signal arrives; it says "writing" once it is there, so the test needs no sleep
_CHILD = """
import signal, sys, time
from sdar_core.envs.alfworld import generator
# a launcher without job control (`cmd &` in a script, nohup) starts us with SIGINT ignored, and
# Python then keeps it ignored: restore Ctrl-C's KeyboardInterrupt as a terminal gives it
signal.signal(signal.SIGINT, signal.default_int_handler)
real = generator._generate_split
def stalled(root, split, *args):
    if split != "train":
        print("writing", flush=True)
        while True:  # not signal.pause(): a signal landing just before it would be missed
            time.sleep(0.05)
    return real(root, split, *args)
generator._generate_split = stalled
generator.generate_games(sys.argv[1], n_train=1, n_valid_seen=1, n_valid_unseen=0)
"""


def _temp_folders(parent: Path) -> list[Path]:
    return sorted(parent.glob(".games.tmp-*"))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_writing_removes_the_temp_folder(tmp_path, signum):
    out = tmp_path / "games"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "writing", child.stderr.read()
        (temp,) = _temp_folders(tmp_path)
        assert any(temp.rglob("game.tw-pddl"))  # the train game is there, half of the output
        child.send_signal(signum)
        child.wait(timeout=60)
    finally:
        child.kill()
        child.wait()
    assert _temp_folders(tmp_path) == []
    assert not out.exists()
    if signum == signal.SIGTERM:  # ended by the signal, as without the clean-up
        assert child.returncode == -signal.SIGTERM
    else:  # Python's own Ctrl-C
        assert "KeyboardInterrupt" in child.stderr.read()


def test_an_error_while_writing_removes_the_temp_folder(tmp_path, monkeypatch):
    def failing(root, split, *args):
        (root / split).mkdir()
        raise RuntimeError("disk full")

    monkeypatch.setattr(generator, "_generate_split", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        generate_games(tmp_path / "games", n_train=1, n_valid_seen=0, n_valid_unseen=0)
    assert _temp_folders(tmp_path) == []


@pytest.mark.parametrize(
    ("counts", "field"),
    [
        ({"n_train": 10**9, "n_valid_seen": 1}, "n_train_games"),
        ({"n_train": 1, "n_valid_seen": 10**9}, "n_valid_games"),
        ({"n_train": 1, "n_valid_seen": 1, "n_valid_unseen": 10**9}, "n_valid_games"),
    ],
)
def test_absurd_counts_are_refused_before_writing(tmp_path, monkeypatch, counts, field):
    def writing(*args):
        raise AssertionError("started writing games")

    monkeypatch.setattr(generator, "_generate_split", writing)
    counts = {"n_valid_unseen": 0} | counts
    with pytest.raises(ConfigError, match=f"{field} must be <= 100000, got 1000000000"):
        generate_games(tmp_path / "games", **counts)
    assert list(tmp_path.iterdir()) == []
