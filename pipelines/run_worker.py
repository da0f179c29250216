"""One embedded run in a process of its own, beside others (`sdar replicate --workers N`).

    python -m pipelines.run_worker CONFIG_JSON RESULT_JSON

kfp.local keeps its settings (runner, pipeline root, cache) in the process, so runs that go at
once need processes of their own. The parent (`sdar replicate`) holds the out-dir's lock and has
cleaned the pipeline root; the worker runs `run_local(config, beside_others=True)` and writes its
`LocalRunResult` as JSON to RESULT_JSON (temp file, then rename), which `run_in_worker` reads
back. All runs share the out-dir's pipeline root, kfp cache (each entry is written to a temp
file and renamed) and MLflow store (sqlite, whose writers wait for each other).

`run_in_worker` starts the worker with `threads` intra-op threads for torch (OMP_NUM_THREADS;
its tasks and their warm server inherit it), so N workers share the cores instead of each
taking all of them. The worker's terminal output goes to `<out_dir>/logs/worker-<run>.out`; a
worker that fails raises `WorkerFailed` naming that file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from pipelines.local import LocalRunResult, run_local
from sdar_core.errors import SdarError
from sdar_core.outputs import write_text_atomic
from sdar_core.run import RunConfig

__all__ = ["WorkerFailed", "run_in_worker"]

_PATHS = ("log_path", "final_checkpoint")  # the result's Path fields


class WorkerFailed(SdarError):
    """A run in a worker process ended with an error."""


def run_in_worker(config: RunConfig, *, threads: int) -> LocalRunResult:
    """Run `config`'s pipeline in a worker process (module docstring) and return its result."""
    text = config.model_dump_json()
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    name = f"{config.algorithm}-seed{config.rollout.seed}-{digest}"
    logs = config.out_dir.resolve() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    output = logs / f"worker-{name}.out"
    threads_env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    with tempfile.TemporaryDirectory(prefix="sdar-run-worker-") as tmp:
        config_path, result_path = Path(tmp) / "config.json", Path(tmp) / "result.json"
        config_path.write_text(text)
        with open(output, "w") as out:
            done = subprocess.run(
                [sys.executable, "-m", "pipelines.run_worker", str(config_path), str(result_path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=os.environ | threads_env,
                check=False,
            )
        if done.returncode != 0 or not result_path.is_file():
            tail = output.read_text(errors="replace").strip().splitlines()[-1:]
            raise WorkerFailed(
                f"the {config.algorithm} run (seed {config.rollout.seed}) failed with exit status "
                f"{done.returncode}: {tail[0] if tail else 'no output'}; its output: {output}"
            )
        fields = json.loads(result_path.read_text())
    for key in _PATHS:
        if fields[key] is not None:
            fields[key] = Path(fields[key])
    fields["executed"] = tuple(fields["executed"])
    return LocalRunResult(**fields)


def main(config_path: str, result_path: str) -> None:
    config = RunConfig.model_validate_json(Path(config_path).read_text())
    result = run_local(config, beside_others=True)
    fields = dataclasses.asdict(result)
    for key in _PATHS:
        if fields[key] is not None:
            fields[key] = str(fields[key])
    write_text_atomic(Path(result_path), json.dumps(fields))


if __name__ == "__main__":
    main(*sys.argv[1:])
