"""Memoise the two text parsers that dominate ALFWorld resets and steps on the real engine.

Profiling the engine (textworld 1.7.0, alfworld 0.4.2) shows where the time of a reset and a step
goes, and neither place depends on the game's state:
- `fast_downward.pddl2sas(domain, problem, optimize=...)` translates PDDL to SAS; textworld calls
  it twice for every `PddlState` it builds, on load and again on reset — four translations of the
  same text per episode start, and the G members of a group start the same game;
- `textworld.envs.pddl.textgen._parse_and_convert(text, rule_name=...)` parses a text-grammar
  template with TatSu every time a command or observation is derived from it, i.e. thousands of
  times per step for the same few hundred templates.

Both are pure functions of their arguments (strings, flags) that return fresh objects, which
textworld then mutates (symbol contexts) or keeps (the SAS task). `install()` replaces the two
module attributes with wrappers that compute each distinct call once and hand out a deep copy of
the stored result, so callers never share objects and see exactly what the parser would return.
`python benchmarks/envs.py` (64 episodes of 64 generated games, cold caches, side by side):
a reset of distinct games 0.48 -> 0.34 s per episode (1.4x), of groups of 8 on one game 0.57 ->
0.18 s (3.2x); an expert step 51 -> 26 ms (2.0x); what is left of a step is mostly textworld's
own deep copies of the derivation context. tests/test_envs_alfworld_parse_cache.py plays episodes
with and without the caches and checks every observation and admissible list is identical.

The patch is process-wide and idempotent; `uninstalled()` restores the originals for a block (for
that test). If a textworld or fast_downward release moves either function, `install` leaves it
alone (the engine is then only slower) — the versions are pinned in pyproject.toml.
"""

from __future__ import annotations

import copy
import functools
import importlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["clear", "install", "installed", "uninstalled"]

_TARGETS = (  # (module, attribute, entries kept)
    ("fast_downward", "pddl2sas", 64),  # one entry per (game problem, optimize flag)
    ("textworld.envs.pddl.textgen", "_parse_and_convert", 8192),  # templates, shared by games
)
_ORIGINALS: dict[tuple[str, str], Callable[..., Any]] = {}
_SUSPENDED = [0]  # > 0 inside `uninstalled()`: install() then does nothing


def _memoised(fn: Callable[..., Any], maxsize: int) -> Callable[..., Any]:
    """`fn` computed once per distinct (args, kwargs), least recently used dropped beyond
    `maxsize`; every call returns a deep copy of the stored result."""
    store: OrderedDict[Any, Any] = OrderedDict()

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = (args, tuple(sorted(kwargs.items())))
        if key in store:
            store.move_to_end(key)
        else:
            store[key] = fn(*args, **kwargs)
            if len(store) > maxsize:
                store.popitem(last=False)
        return copy.deepcopy(store[key])

    wrapper.sdar_memoised = True  # type: ignore[attr-defined]
    wrapper.cache_clear = store.clear  # type: ignore[attr-defined]
    return wrapper


def install() -> None:
    """Memoise both parsers (once per process; later calls do nothing)."""
    if _SUSPENDED[0]:
        return
    for module_name, attribute, maxsize in _TARGETS:
        module = importlib.import_module(module_name)
        current = getattr(module, attribute, None)
        if current is None or getattr(current, "sdar_memoised", False):
            continue
        _ORIGINALS[(module_name, attribute)] = current
        setattr(module, attribute, _memoised(current, maxsize))


def installed() -> bool:
    """True when both parsers are memoised."""
    functions = (getattr(importlib.import_module(m), a, None) for m, a, _ in _TARGETS)
    return all(getattr(f, "sdar_memoised", False) for f in functions)


def clear() -> None:
    """Forget every stored result (for cold-cache measurements)."""
    for module_name, attribute, _ in _TARGETS:
        wrapper = getattr(importlib.import_module(module_name), attribute, None)
        if getattr(wrapper, "sdar_memoised", False):
            wrapper.cache_clear()


@contextmanager
def uninstalled() -> Iterator[None]:
    """Run a block with the original parsers (install() does nothing inside it), then put the
    memoised ones back."""
    _SUSPENDED[0] += 1
    patched = {}
    for (module_name, attribute), original in _ORIGINALS.items():
        module = importlib.import_module(module_name)
        patched[(module_name, attribute)] = getattr(module, attribute)
        setattr(module, attribute, original)
    try:
        yield
    finally:
        for (module_name, attribute), wrapper in patched.items():
            setattr(importlib.import_module(module_name), attribute, wrapper)
        _SUSPENDED[0] -= 1
