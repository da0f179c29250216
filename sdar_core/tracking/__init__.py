"""MLflow tracking of pipeline runs and the comparison of runs (`sdar compare`).

- `store`: the experiment and the one MLflow run per pipeline run (`prepare_experiment`,
  `start_run`, `finish_run`), and `RunStore`, through which the stages log and read back.
- `sqlite_store`: a local MLflow sqlite store written with sqlite3, so that a pipeline task does
  not import mlflow; and the re-pointing of a store that was moved or copied.
- `stage`: `StageTracker`, which logs a stage's summary with step = round and its duration.
- `plots`: matplotlib (Agg) figures of metric histories; MLflow has no headless chart export.
- `compare`: runs or an experiment → a table and plots, seeds of one algorithm grouped into mean
  ± 95% interval, logged back to MLflow as a comparison run.

Nothing here imports kfp; the pipeline components call these functions.
"""

from sdar_core.tracking.compare import ComparisonResult, compare_runs
from sdar_core.tracking.stage import StageTracker, flatten_metrics
from sdar_core.tracking.store import finish_run, prepare_experiment, start_run

__all__ = [
    "ComparisonResult",
    "StageTracker",
    "compare_runs",
    "finish_run",
    "flatten_metrics",
    "prepare_experiment",
    "start_run",
]
