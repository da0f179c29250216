"""One batched environment interface for every benchmark.

`make(name, **options)` returns a `BatchEnv` over a batch of episodes: `reset(task_ids or seeds)`
and `step(model_texts)` give one `StepRecord` (observation, reward, done, info) per episode, and the
environment itself projects model text onto actions. Benchmarks register themselves by name;
importing this package registers every built-in benchmark without importing its engine.
"""

from sdar_core.envs import alfworld as _alfworld  # noqa: F401  (registers "alfworld")
from sdar_core.envs import search as _search  # noqa: F401  (registers "search")
from sdar_core.envs import webshop as _webshop  # noqa: F401  (registers "webshop")
from sdar_core.envs.base import (
    BatchEnv,
    EpisodeHistory,
    EpisodeStart,
    Policy,
    StepOutcome,
    StepRecord,
    Turn,
    stratified_task_ids,
)
from sdar_core.envs.registry import list_envs, make, register_env

__all__ = [
    "BatchEnv",
    "EpisodeHistory",
    "EpisodeStart",
    "Policy",
    "StepOutcome",
    "StepRecord",
    "Turn",
    "list_envs",
    "make",
    "register_env",
    "stratified_task_ids",
]
