"""Upper bounds of the size-like settings (rounds, groups, games, tasks, tokens, steps, batch
sizes, ...), in one table, and the integer field types every config uses for counts.

Why bounds: a setting such as `rounds: 1e9` or `group_size: 1e6` is a typo or a mistake far more
often than a plan, and without a bound it hangs the set-up, fills a disk or grows a task without
end instead of failing at once. Each limit is generous - well above the paper's recipes (150
rounds, 16 tasks x 8, 50 steps, 512 new tokens; pipelines/recipes/) and above what a cluster run
of today's models would plausibly use - so that only absurd values meet it.

Raising a limit on purpose: set the environment variable `SDAR_LIMIT_<FIELD>` (the field name in
capitals), e.g. `SDAR_LIMIT_ROUNDS=5000 sdar run ...`. The one mechanism covers every config;
`sdar compile` copies the variables it finds into every task of the compiled pipeline
(pipelines/sdar_pipeline.py), so the pods that validate the stage configs again accept what the
compile accepted, and the embedded run's task subprocesses inherit them.

Counts are whole numbers: `Count` (and `OptionalCount`) refuse booleans (`"rounds": true` is not
1) and floats (`2.5`, and also `1e9` or `2.0`, which JSON and YAML readers give as floats), then
apply the field's limit from `LIMITS` by field name; a field name that is not in the table (a
seed) gets the whole-number check only.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, ValidationInfo

from sdar_core.errors import ConfigError

__all__ = [
    "ENV_PREFIX",
    "LIMITS",
    "Count",
    "OptionalCount",
    "WHOLE_NUMBER",
    "check_limit",
    "check_whole_number",
    "limit",
    "overrides",
]

ENV_PREFIX = "SDAR_LIMIT_"
_TOKENS = 1 << 20  # ~1M: beyond the longest context windows of today's open models

# field name -> largest accepted value; one name means one thing in every config that has it
LIMITS: dict[str, int] = {
    # run and pipeline shape (each round adds 2-3 tasks to the graph)
    "rounds": 1_000,
    "rounds_per_run": 1_000,  # a chain's runs (pipelines/chain.py)
    "eval_every": 1_000,  # rounds between held-out evaluations (pipelines/options.py)
    "total_iterations": 1_000_000,
    "num_gpus": 64,
    "workers": 64,  # worker processes of a model stage, one per GPU
    # data
    "n_train_games": 100_000,
    "n_valid_games": 100_000,
    "n_warmup_games": 100_000,  # miniature2's warm-up split
    "n_tasks": 100_000,
    "shard_groups": 100_000,
    "group_size": 256,
    "episodes_per_task": 1_000,
    "n_test_goals": 1_000_000,
    "max_products": 10_000_000,
    # episodes
    "max_steps": 1_000,
    "history_length": 1_000,
    "think_words": 100_000,
    "skill_detours": 1_000,
    "k": 100,
    "skills_k": 100,
    "topk": 50,
    "retries": 100,
    # tokens
    "max_new_tokens": 131_072,
    "max_prompt_tokens": _TOKENS,
    "skills_max_tokens": _TOKENS,
    "min_prefix_tokens": _TOKENS,
    "batch_tokens": 16 * _TOKENS,
    "micro_batch_tokens": 16 * _TOKENS,
    "chunk_size": _TOKENS,
    # batches and optimisation
    "batch_size": 65_536,
    "max_batch_size": 65_536,
    "mini_batch_size": _TOKENS,
    "epochs": 1_000,
    "warmup_steps": 1_000_000,
    "max_nonfinite_steps": 1_000,
    "lora_rank": 4_096,
    # skill index
    "fusion_k": 10_000,
    "card_weight": 100,
    # tiny model shape
    "vocab_size": 262_144,
    "hidden_size": 16_384,
    "intermediate_size": 65_536,
    "num_hidden_layers": 256,
    "num_attention_heads": 256,
    "num_key_value_heads": 256,
    "max_position_embeddings": _TOKENS,
}


def overrides() -> dict[str, str]:
    """The `SDAR_LIMIT_*` variables of this process's environment (the raised limits)."""
    return {name: value for name, value in os.environ.items() if name.startswith(ENV_PREFIX)}


def limit(field: str) -> int | None:
    """The largest accepted value of `field`: its `SDAR_LIMIT_<FIELD>` variable if set, else
    `LIMITS[field]`; None for a field without a limit."""
    variable = ENV_PREFIX + field.upper()
    raised = os.environ.get(variable)
    if raised is not None:
        try:
            return int(raised)
        except ValueError:
            raise ConfigError(
                f"{variable}={raised!r} is not a whole number: set it to the new limit of "
                f"{field}, e.g. {variable}={2 * LIMITS.get(field, 1)}"
            ) from None
    return LIMITS.get(field)


def check_limit(field: str, value: int) -> None:
    """Raise ConfigError when `value` exceeds the limit of `field` (message: the field, its limit
    and how to raise it)."""
    largest = limit(field)
    if largest is not None and value > largest:
        raise ConfigError(
            f"{field} must be <= {largest}, got {value}: a larger value is refused as a likely "
            f"mistake; to use it on purpose, set the environment variable "
            f"{ENV_PREFIX}{field.upper()}={value}"
        )


def check_whole_number(field: str, value: Any) -> None:
    """Raise ConfigError when `value` is a boolean or a float (a count must be an int)."""
    if isinstance(value, bool):
        raise ConfigError(f"{field} must be a whole number, got {str(value).lower()} (a boolean)")
    if isinstance(value, float):
        if value.is_integer():
            check_limit(field, int(value))  # 1e9: the limit says more than the notation
            raise ConfigError(
                f"{field} must be a whole number written without a decimal point or exponent, "
                f"got {value!r}: write {int(value)}"
            )
        raise ConfigError(f"{field} must be a whole number, got {value!r}")


def _whole_number(value: Any, info: ValidationInfo) -> Any:
    check_whole_number(info.field_name or "the value", value)
    return value


def _within_limit(value: int | None, info: ValidationInfo) -> int | None:
    if value is not None and info.field_name is not None:
        check_limit(info.field_name, value)
    return value


# refuses booleans and floats before the field's own type sees them (e.g. a Literal of ints,
# which would take true as 1)
WHOLE_NUMBER = BeforeValidator(_whole_number)
# an int field that refuses booleans and floats and applies LIMITS[field name]
Count = Annotated[int, BeforeValidator(_whole_number), AfterValidator(_within_limit)]
OptionalCount = Annotated[int | None, BeforeValidator(_whole_number), AfterValidator(_within_limit)]
