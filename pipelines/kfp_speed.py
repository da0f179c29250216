"""Graph building in time linear in the number of tasks: three of kfp's helpers, replaced while
`build_pipeline` runs by equivalents that return exactly the same values.

Profiled with cProfile on kfp 2.x (benchmarks/graph_build.py prints the figures): building the
unrolled graph took 0.6 s for 50 rounds and 8.6 s for 400, and all of the growth is inside kfp:

- `Pipeline.add_task` names the k-th task of one component `<name>-k` by trying `<name>-2`,
  `<name>-3`, ... in turn, each a membership test on a fresh *list* of every task name: cubic
  in the rounds (the rollout, teacher and update components recur once per round).
  Replacement: the same names, found with one set.
- `build_spec_by_group` sanitizes the name of every task of a DAG once per task of that DAG
  (a regular expression each time): quadratic. Replacement: the sanitizer memoised (a pure
  function of its string), so the quadratic part is a dict look-up per pair of tasks (~0.1 s at
  1,000 rounds) rather than two regular expressions.
- every `set_cpu_request`, `set_memory_limit`, ... calls `inspect.stack()` to know its caller's
  name for an error message, reading the source of every frame (~0.5 ms a call, linear but the
  largest constant). Replacement: the caller's frame read directly.

The replacements are scoped (`faster_kfp()`), so nothing outside the build sees them, and the
committed recipe YAMLs, compared byte for byte with a fresh compile by tests/test_recipes.py,
show that the compiled graph is unchanged.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Iterator

from kfp.dsl import pipeline_task
from kfp.dsl import utils as kfp_utils

__all__ = ["faster_kfp"]


def _unique_name(name: str, collection: list[str], delimiter: str) -> str:
    """kfp's `make_name_unique_by_adding_index`: `name`, else `name<delimiter>k` for the
    smallest k >= 2 not in `collection`."""
    taken = set(collection)
    if name not in taken:
        return name
    index = 2
    while f"{name}{delimiter}{index}" in taken:
        index += 1
    return f"{name}{delimiter}{index}"


def _ensure_container_spec_exists(self: pipeline_task.PipelineTask) -> None:
    """kfp's check, with the caller's name read from its frame instead of `inspect.stack()`."""
    if self.container_spec is None:
        caller = sys._getframe(1).f_code.co_name
        raise ValueError(
            f"{caller} can only be used on single-step components, not pipelines used as "
            "components, or special components like importers."
        )


@contextlib.contextmanager
def faster_kfp() -> Iterator[None]:
    """Use the replacements (module docstring) inside the block."""
    saved = (
        kfp_utils.make_name_unique_by_adding_index,
        kfp_utils.sanitize_task_name,
        pipeline_task.PipelineTask._ensure_container_spec_exists,
    )
    kfp_utils.make_name_unique_by_adding_index = _unique_name
    kfp_utils.sanitize_task_name = functools.lru_cache(maxsize=None)(saved[1])
    pipeline_task.PipelineTask._ensure_container_spec_exists = _ensure_container_spec_exists
    try:
        yield
    finally:
        (
            kfp_utils.make_name_unique_by_adding_index,
            kfp_utils.sanitize_task_name,
            pipeline_task.PipelineTask._ensure_container_spec_exists,
        ) = saved
