"""Rollouts: the policy plays environment episodes; the result is a versioned trajectory artifact.

- `generate_rollouts(model_dir, games_dir, out_dir, config, round=…)`: the pipeline entry point
  (loop.py), configured by `RolloutConfig` (config.py);
- generation backends behind one interface, chosen by name: "hf" (transformers, CPU/GPU) and
  "vllm" (GPU, imported lazily) (backends/);
- the two training-sample layouts, "per_step" and "whole_trajectory" (samples.py);
- the artifact schema, `write_trajectories` / `read_trajectories` (schema.py); its
  `datasets.Features` (FEATURES, SCORED_FEATURES) are built on first use, so that importing
  this package does not import datasets.
"""

from typing import Any

from sdar_core.rollout.backends.base import (
    Generation,
    GenerationBackend,
    SamplingSettings,
    get_backend_factory,
    list_backends,
    register_backend,
)
from sdar_core.rollout.config import RolloutConfig
from sdar_core.rollout.loop import choose_tasks, generate_rollouts, play_round, sampling_seed
from sdar_core.rollout.samples import Episode, Turn, build_samples, list_layouts, summarize
from sdar_core.rollout.schema import (
    SCHEMA_VERSION,
    read_metadata,
    read_trajectories,
    write_trajectories,
)
from sdar_core.rollout.tokens import TurnDelta, render_prompt_ids

__all__ = [
    "FEATURES",
    "SCHEMA_VERSION",
    "SCORED_FEATURES",
    "Episode",
    "Generation",
    "GenerationBackend",
    "RolloutConfig",
    "SamplingSettings",
    "Turn",
    "TurnDelta",
    "build_samples",
    "choose_tasks",
    "generate_rollouts",
    "get_backend_factory",
    "list_backends",
    "list_layouts",
    "play_round",
    "read_metadata",
    "read_trajectories",
    "register_backend",
    "render_prompt_ids",
    "sampling_seed",
    "summarize",
    "write_trajectories",
]


def __getattr__(name: str) -> Any:
    if name in ("FEATURES", "SCORED_FEATURES"):
        from sdar_core.rollout import schema

        return getattr(schema, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
