"""The memoised ALFWorld parsers (sdar_core/envs/alfworld/parse_cache.py): the engine says exactly
the same with and without them, and the memoiser computes once, copies out, and evicts."""

from __future__ import annotations

from pathlib import Path

from sdar_core.envs.alfworld import parse_cache
from sdar_core.envs.alfworld.engine import GameEngine
from sdar_core.envs.alfworld.parse_cache import _memoised

HAND_GAME = Path(__file__).parent / "data" / "alfworld"


def _play(game_files: list[Path], steps: int) -> list:
    """Every EngineState of a fixed walk through each game (the k-th admissible command at step
    k, varied so that objects are taken, moved and opened)."""
    seen = []
    engine = GameEngine()
    try:
        for game in game_files:
            for _ in range(2):  # a second reset of the loaded game must also match
                state = engine.reset(game)
                seen.append(state)
                for k in range(steps):
                    commands = [c for c in state.admissible if c not in ("help", "inventory")]
                    state = engine.step(commands[(7 * k + 3) % len(commands)])
                    seen.append(state)
    finally:
        engine.close()
    return seen


def test_engine_output_is_identical_with_and_without_the_caches(alfworld_games_dir):
    games = sorted(alfworld_games_dir.rglob("game.tw-pddl"))[:2]
    games += sorted(HAND_GAME.rglob("game.tw-pddl"))
    cached = _play(games, steps=8)
    assert parse_cache.installed()
    with parse_cache.uninstalled():
        assert not parse_cache.installed()
        plain = _play(games, steps=8)
        assert not parse_cache.installed()  # GameEngine() inside the block did not re-patch
    assert parse_cache.installed()
    assert len(cached) == len(plain) == 3 * 2 * 9
    assert cached == plain
    assert len({s.admissible for s in plain}) > 6  # the walk visited many states


def test_install_is_idempotent():
    GameEngine().close()
    import fast_downward

    wrapper = fast_downward.pddl2sas
    parse_cache.install()
    assert fast_downward.pddl2sas is wrapper


def test_memoiser_computes_once_copies_out_and_evicts_least_recent():
    calls = []

    def parse(text, *, flag=False):
        calls.append((text, flag))
        return {"text": text, "flag": flag, "symbols": [text]}

    memo = _memoised(parse, maxsize=2)
    first = memo("a")
    first["symbols"].append("mutated by a caller")
    again = memo("a")
    assert again == {"text": "a", "flag": False, "symbols": ["a"]} and again is not first
    assert memo("a", flag=True)["flag"] is True  # keyword arguments are part of the key
    assert calls == [("a", False), ("a", True)]
    memo("b")  # evicts ("a", False), the least recently used
    memo("a", flag=True)
    assert calls == [("a", False), ("a", True), ("b", False)]
    memo("a")
    assert calls[-1] == ("a", False) and len(calls) == 4


def test_shared_sas_task_is_left_as_translated(alfworld_games_dir):
    """pddl2sas's result is handed out without a copy (textworld only reads the SAS task): after
    episodes played on it, the stored task pickles exactly as a fresh translation does."""
    import json
    import pickle

    import fast_downward

    game = sorted(alfworld_games_dir.rglob("game.tw-pddl"))[0]
    _play([game], steps=8)
    data = json.loads(game.read_text())
    from textworld.envs.pddl.logic import GameLogic

    domain = GameLogic(domain=data["pddl_domain"], grammar=data["grammar"]).domain
    shared = fast_downward.pddl2sas(domain, data["pddl_problem"], verbose=False)
    assert fast_downward.pddl2sas(domain, data["pddl_problem"], verbose=False) is shared
    with parse_cache.uninstalled():
        fresh = fast_downward.pddl2sas(domain, data["pddl_problem"], verbose=False)
    assert pickle.dumps(shared) == pickle.dumps(fresh)


def test_context_copy_gives_fresh_dicts_and_shares_their_values():
    from textworld.envs.pddl import textgen

    GameEngine().close()
    info, var = object(), object()
    context = {
        "state": object(), "facts": [], "variables": {"o": info}, "mapping": {"p": var},
        "entity_infos": {},
    }  # fmt: skip
    copied = textgen.copy_context(context)
    copied["variables"]["r"] = object()  # what textgen's `query` does to a copy
    copied["mapping"]["q"] = object()
    assert context["variables"] == {"o": info} and context["mapping"] == {"p": var}
    assert copied["variables"]["o"] is info and copied["mapping"]["p"] is var
    assert copied["state"] is context["state"] and copied["entity_infos"] is context["entity_infos"]
