"""`StageTracker`: log one pipeline stage's numbers into the pipeline run, with step = round.

    with StageTracker(tracking_uri, run_id, stage="rollout", round=r) as tracker:
        summary = generate_rollouts(...)
        flat = tracker.log(summary)

Metric names are `<stage>/<key>` with nested keys joined by "/" (e.g.
`rollout/success_rate_by_task_type/pick_and_place_simple`, `update/sdar/gate_mean`); booleans
become 0/1, strings and per-step histories are left out (the histories stay in the artifacts).
On a clean exit the tracker also logs `<stage>/duration_s`, the wall time of the block, and prints
one line with the stage's name, round, seconds and key figures (`sdar_core.tracking.console`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sdar_core.tracking.store import run_store

__all__ = ["StageTracker", "flatten_metrics"]

_SKIPPED = {"history", "config"}  # per-step lists and config echoes are not metrics


def flatten_metrics(summary: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The finite numbers of `summary`, nested keys joined with "/"."""
    out: dict[str, float] = {}
    for key, value in summary.items():
        if key in _SKIPPED:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out |= flatten_metrics(value, prefix=f"{name}/")
        elif isinstance(value, bool | int | float) and math.isfinite(float(value)):
            out[name] = float(value)
    return out


class StageTracker:
    """Logs a stage's metrics (step = round), artifacts and duration into one MLflow run."""

    def __init__(self, tracking_uri: str, run_id: str, *, stage: str, round: int) -> None:
        self.store = run_store(tracking_uri)
        self.run_id, self.stage, self.round = run_id, stage, round
        self._started = 0.0
        self._logged: dict[str, float] = {}

    def __enter__(self) -> StageTracker:
        self._started = time.perf_counter()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            from sdar_core.tracking.console import stage_line

            seconds = time.perf_counter() - self._started
            self.log_numbers({f"{self.stage}/duration_s": seconds})
            # one line per stage: the embedded run echoes it, a pod log keeps it
            print(stage_line(self.stage, self.round, seconds, self._logged), flush=True)

    def log(self, summary: Mapping[str, Any]) -> dict[str, float]:
        """Log the flattened `summary` as `<stage>/...`; return what was logged."""
        flat = flatten_metrics(summary, prefix=f"{self.stage}/")
        self.log_numbers(flat)
        self._logged |= flat
        return flat

    def log_numbers(self, numbers: Mapping[str, float]) -> None:
        stamp = int(time.time() * 1000)
        self.store.log_metrics(self.run_id, numbers, step=self.round, timestamp_ms=stamp)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Upload a file or folder into the run (under `artifact_path`)."""
        self.store.log_artifact(self.run_id, path, artifact_path)
