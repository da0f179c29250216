"""Benchmark resuming the embedded run (issue 13): wall times of a full first run, of a run
stopped with SIGTERM when round 1's update starts and of its re-run, and of re-running a
finished run. Default RunConfig (R = 2, 12 + 12 games), each run a fresh `sdar run` process.

Usage:  python benchmarks/resume.py OUT_DIR      (OUT_DIR must not exist; about 15 minutes)
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

TASK = re.compile(r"Executing task .*?'(?P<name>[a-z0-9-]+)'")
SUMMARY = ("set-up", "tasks run", "MLflow run id")
SDAR = [sys.executable, "-m", "sdar_core.cli", "run"]


def _timed(out_dir: Path) -> None:
    started = time.perf_counter()
    done = subprocess.run([*SDAR, "--out-dir", str(out_dir)], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    summary = [line for line in done.stdout.splitlines() if line.startswith(SUMMARY)]
    print(f"  {seconds:.1f} s, exit {done.returncode}: " + " | ".join(summary), flush=True)


def _killed_at_update(out_dir: Path, task: str = "sdar-update-2") -> None:
    started = time.perf_counter()
    run = subprocess.Popen(
        [*SDAR, "--out-dir", str(out_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    for line in run.stdout:
        found = TASK.search(line)
        if found and found["name"] == task:
            break
    signalled = time.perf_counter() - started
    run.send_signal(signal.SIGTERM)
    run.stdout.read()
    code = run.wait()
    print(
        f"  SIGTERM at {signalled:.1f} s ({task} started), exit {code} at "
        f"{time.perf_counter() - started:.1f} s",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    root = parser.parse_args().out_dir
    root.mkdir(parents=True)
    print("first run:")
    _timed(root / "full")
    print("a run killed during round 1's update:")
    _killed_at_update(root / "killed")
    print("its re-run:")
    _timed(root / "killed")
    print("re-running the finished first run:")
    _timed(root / "full")


if __name__ == "__main__":
    main()
