"""Deterministic evaluation: `evaluate(model_dir, games_dir, out_path, EvalConfig(...))` plays a
fixed validation set (the sorted task ids of a split, or n of them stratified by task type) with
the checkpoint (greedy, or sampled with k seeds), the expert (upper bound) or a random admissible
policy (baseline), and writes a JSON artifact with per-task-type success, avg@k and 95%
intervals (metrics registered per environment).
"""

from sdar_core.evaluation.config import EvalConfig
from sdar_core.evaluation.evaluate import evaluate, validation_tasks
from sdar_core.evaluation.metrics import (
    EVAL_METRICS,
    register_eval_metrics,
    t_interval,
    wilson_interval,
)
from sdar_core.evaluation.policies import ModelPolicy, greedy_generate, load_eval_model

__all__ = [
    "EVAL_METRICS",
    "EvalConfig",
    "ModelPolicy",
    "evaluate",
    "greedy_generate",
    "load_eval_model",
    "register_eval_metrics",
    "t_interval",
    "validation_tasks",
    "wilson_interval",
]
