"""Memoise the text parsers, and cheapen the context copies, that dominate ALFWorld resets and
steps on the real engine.

Profiling the engine (textworld 1.7.0, alfworld 0.4.2) shows where the time of a reset and a step
goes, and none of these places depends on the game's state:
- `fast_downward.pddl2sas(domain, problem, optimize=...)` translates PDDL to SAS; textworld calls
  it twice for every `PddlState` it builds, on load and again on reset — four translations of the
  same text per episode start, and the G members of a group start the same game;
- `_parse_and_convert(text, rule_name=...)` of `textworld.envs.pddl.textgen` (a text-grammar
  template), of `textworld.logic` (a grammar rule's condition, a query such as
  `in(o:object, r:receptacle)`) and of `textworld.envs.pddl.logic` (a game's actions and
  grammar, on every load) parse with TatSu every time, i.e. thousands of times per step for the
  same few hundred strings;
- `textgen.copy_context` deep-copies the `variables` and `mapping` of a derivation context
  (entity infos, placeholders, variables) tens of times per command derived.

The parsers are pure functions of their arguments (strings, flags) that return fresh objects,
which textworld then mutates (symbol contexts) or only reads (the SAS task: its actions'
parameters, types, objects and initial atoms in `PddlState`). `install()` replaces those module
attributes with wrappers that compute each distinct call once and hand out a deep copy of the
stored result — or, for the SAS translation, the stored result itself — so callers never share
an object they change and see exactly what the parser would return. The context copy becomes
one level deep: a derivation only adds keys to those two dicts and reads their values (the
grammar's `{o.name}`, `{r.indefinite}`-style expressions), so fresh dicts give the same text.

`python benchmarks/envs.py` (64 episodes of 64 generated games, cold caches, side by side, an
expert stepping): a reset of distinct games 1.07 -> 0.50 s per episode (2.1x), of groups of 8 on
one game 1.16 -> 0.13 s (8.7x); a step 102 -> 8.6 ms (12x). With the first two parsers only
(before the last three patches) the round-0 rollouts of the second miniature (64 episodes, tiny
model, 443 steps) took 33.5 s; with all of them 14.7 s, the same trajectories byte for byte.
tests/test_envs_alfworld_parse_cache.py plays episodes with and without the patches and checks
every observation and admissible list is identical, and that the shared SAS task is unchanged
by play.

The patch is process-wide and idempotent; `uninstalled()` restores the originals for a block (for
that test). If a textworld or fast_downward release moves a function, `install` leaves it alone
(the engine is then only slower) — the versions are pinned in pyproject.toml.
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

_TARGETS = (  # (module, attribute, entries kept, hand out a copy)
    # one entry per (game problem, optimize flag); textworld only reads the SAS task
    ("fast_downward", "pddl2sas", 64, False),
    ("textworld.envs.pddl.textgen", "_parse_and_convert", 8192, True),  # templates
    ("textworld.logic", "_parse_and_convert", 8192, True),  # the grammar's conditions, queries
    ("textworld.envs.pddl.logic", "_parse_and_convert", 16, True),  # a game's actions, grammar
)
_ORIGINALS: dict[tuple[str, str], Callable[..., Any]] = {}
_SUSPENDED = [0]  # > 0 inside `uninstalled()`: install() then does nothing


def _memoised(fn: Callable[..., Any], maxsize: int, copy_out: bool = True) -> Callable[..., Any]:
    """`fn` computed once per distinct (args, kwargs), least recently used dropped beyond
    `maxsize`; every call returns a deep copy of the stored result (`copy_out`), or the stored
    result itself (for a result its callers only read)."""
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
        return copy.deepcopy(store[key]) if copy_out else store[key]

    wrapper.sdar_patched = True  # type: ignore[attr-defined]
    wrapper.cache_clear = store.clear  # type: ignore[attr-defined]
    return wrapper


def _copy_context(context: dict[str, Any]) -> dict[str, Any]:
    """textworld's `textgen.copy_context` with its two deep copies made one level deep: the
    derivation only adds keys to a context's `variables` and `mapping` dicts (`query`), and
    every value in them (entity infos, placeholders, variables) is only read (the grammar's
    `{o.name}`-style expressions), so a fresh dict per context is the same derivation."""
    return {
        "state": context["state"],
        "facts": context["facts"],
        "variables": dict(context["variables"]),
        "mapping": dict(context["mapping"]),
        "entity_infos": context["entity_infos"],
    }


_copy_context.sdar_patched = True  # type: ignore[attr-defined]
_REPLACED = (("textworld.envs.pddl.textgen", "copy_context", _copy_context),)


def _patches() -> Iterator[tuple[str, str, Callable[[Callable[..., Any]], Callable[..., Any]]]]:
    """(module, attribute, how to make its replacement from the original) for every patch."""
    for module_name, attribute, maxsize, copy_out in _TARGETS:
        yield (
            module_name,
            attribute,
            functools.partial(_memoised, maxsize=maxsize, copy_out=copy_out),
        )
    for module_name, attribute, replacement in _REPLACED:
        yield module_name, attribute, lambda _original, r=replacement: r


def install() -> None:
    """Memoise the parsers and replace the context copy (once per process; later calls do
    nothing)."""
    if _SUSPENDED[0]:
        return
    for module_name, attribute, make in _patches():
        module = importlib.import_module(module_name)
        current = getattr(module, attribute, None)
        if current is None or getattr(current, "sdar_patched", False):
            continue
        _ORIGINALS[(module_name, attribute)] = current
        setattr(module, attribute, make(current))


def installed() -> bool:
    """True when every patch is in place."""
    functions = (getattr(importlib.import_module(m), a, None) for m, a, _ in _patches())
    return all(getattr(f, "sdar_patched", False) for f in functions)


def clear() -> None:
    """Forget every stored result (for cold-cache measurements)."""
    for module_name, attribute, *_ in _TARGETS:
        wrapper = getattr(importlib.import_module(module_name), attribute, None)
        if getattr(wrapper, "sdar_patched", False):
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
