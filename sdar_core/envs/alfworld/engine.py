"""One ALFWorld game on the real engine: TextWorld's PDDL environment with alfworld's wrappers.

This is what alfworld's `AlfredTWEnv` runs per game, minus the gym batching: `PddlEnv` (Fast
Downward under the hood) wrapped by `AlfredDemangler` (object ids such as `Apple_bar_1` become
names such as "apple 1") and `AlfredInfos`, asking for `won` and `admissible_commands`.

Why not `textworld.gym`: its batch runs one process per game, which on a few CPU cores costs more
than it saves; we keep one engine per batch slot in-process and reuse it across resets (each engine
loads a private copy of Fast Downward's library, so slots never share planner state).

The PDDL translation and the text-grammar parsing that textworld repeats on every load, reset
and step are memoised, and its context copies made shallow, process-wide (`parse_cache`: 2-9x
faster resets, 12x faster steps, the same output).

Fast Downward overwrites `sys.argv` whenever a game is loaded or reset (its translator parses
options from it); we restore it, so the caller's command line survives.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["EngineState", "GameEngine"]


@contextmanager
def _keep_argv():
    saved = list(sys.argv)
    try:
        yield
    finally:
        sys.argv = saved


@dataclass(frozen=True)
class EngineState:
    """What the engine says after a reset or a step."""

    feedback: str
    admissible: tuple[str, ...]
    won: bool


class GameEngine:
    """A reusable engine slot: `load` a game file, `reset`, then `step` commands."""

    def __init__(self) -> None:
        import textworld
        from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredInfos
        from textworld.envs.pddl import PddlEnv

        from sdar_core.envs.alfworld import parse_cache

        parse_cache.install()  # exact: memoised pure parsers (parse_cache.py)
        infos = textworld.EnvInfos(won=True, admissible_commands=True, extras=["gamefile"])
        with _keep_argv():
            self._env = AlfredInfos(AlfredDemangler(PddlEnv(infos), shuffle=False))
        self.game_file: Path | None = None

    def reset(self, game_file: Path) -> EngineState:
        """Start `game_file` from its initial state (loading it unless already loaded)."""
        game_file = Path(game_file)
        with _keep_argv():
            if game_file != self.game_file:
                self.game_file = None
                self._env.load(str(game_file))
                self.game_file = game_file
            return self._state(self._env.reset())

    def step(self, command: str) -> EngineState:
        """Send one command; an inadmissible one answers "Nothing happens." and changes nothing."""
        state, _score, _done = self._env.step(command)
        return self._state(state)

    @staticmethod
    def _state(state) -> EngineState:
        return EngineState(
            feedback=state["feedback"],
            admissible=tuple(state["admissible_commands"]),
            won=bool(state["won"]),
        )

    def close(self) -> None:
        """Drop the engine. Its copy of Fast Downward's library stays mapped until the process
        ends: unloading it (dlclose) while ctypes still holds function pointers crashes Python."""
        self._env = None
        self.game_file = None
