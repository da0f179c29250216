"""Running the pipeline: the stage functions the KFP components call, the embedded-run settings,
the set-up of its inputs and its success table. Never imports kfp (the kfp side is `pipelines/`).

- `stages`: one function per pipeline stage — parse the stage's config JSON, call the library
  entry point, log to MLflow (step = round) and return the flat metrics.
- `config`: `RunConfig`, the settings of the embedded run (`make run` / `sdar run`), with default
  sizes that fit in minutes on 2 CPU cores; `stage_config_json` turns it into pipeline arguments.
- `prepare`: the model, games and the MLflow experiment, made once and reused.
- `identity`: the model and data as URI + content hash, for MLflow.
- `report`: the success table (start vs final checkpoint, per task type).

The names below are imported on first use (PEP 562): every pipeline task is a fresh interpreter
that imports `sdar_core.run.stages`, and importing `config` eagerly would pull torch and
transformers (through every stage config) into tasks that never touch a model.
"""

from importlib import import_module
from typing import Any

__all__ = ["PreparedInputs", "RunConfig", "prepare_inputs", "stage_config_json", "success_table"]

_HOMES = {
    "PreparedInputs": "sdar_core.run.prepare",
    "RunConfig": "sdar_core.run.config",
    "prepare_inputs": "sdar_core.run.prepare",
    "stage_config_json": "sdar_core.run.config",
    "success_table": "sdar_core.run.report",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'sdar_core.run' has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)
