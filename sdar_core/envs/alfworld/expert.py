"""An exploring expert for ALFWorld, and a random-admissible baseline.

The expert plays like a careful human, not like a planner with x-ray vision: it knows the goal
(object, target receptacle, lamp) but not where things are. It visits receptacles one by one —
kinds that can hold the object first, by alfworld's own tables — opens closed ones, remembers every
object it has seen (from the `take … from …` commands offered at each receptacle), then takes the
object, cleans/heats/cools it at the sink/microwave/fridge, and puts it in place (twice for
pick_two) or turns on the lamp while holding it. It reads only what a model sees (the admissible
commands) plus the goal, so its trajectories are honest warm-start data and an upper bound that a
model could in principle reach. It emits model-style text:
`<think>reason</think><action>cmd</action>`.

Two options serve warm starts that a student can imitate and that teach it to use skills:
`rng` breaks ties between equally likely unexplored receptacles at random (seeded per episode),
so the demonstrations spread over the search orders a student could take instead of always the
first one listed; `homes` (object kind -> receptacle kind, what the skills in the prompt state)
sends the expert to the object's home first, as a reader of those skills would; `detours`
(with `homes`) makes its first moves go elsewhere, to random receptacles other than the home, so
that a warm start that does not train on those moves shows a reader of the skills returning to
what they state from where a student may stand (a teacher scores the student's own steps, most of
them off the skill's path).

Departure from the reference: alfworld's handcoded expert and its planner expert both read the
engine's hidden facts; ours does not, so it works unchanged on official and generated games.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from sdar_core.envs.base import StepRecord
from sdar_core.envs.policies import SlotAgentPolicy

__all__ = ["ExpertAgent", "ExpertPolicy", "RandomPolicy", "format_text"]

_STATIONS = {
    "pick_clean_then_place_in_recep": ("sinkbasin", "clean"),
    "pick_heat_then_place_in_recep": ("microwave", "heat"),
    "pick_cool_then_place_in_recep": ("fridge", "cool"),
}
_TAKE = re.compile(r"^take (?P<obj>.+) from (?P<recep>.+)$")


def format_text(thought: str, command: str) -> str:
    """Model-style output for one step."""
    return f"<think>{thought}</think><action>{command}</action>"


def kind_of(name: str) -> str:
    """'cabinet 10' -> 'cabinet'."""
    head, _, tail = name.strip().rpartition(" ")
    return head if head and tail.isdigit() else name.strip()


def _natural(name: str) -> tuple[str, int]:
    head, _, tail = name.rpartition(" ")
    return (head, int(tail)) if tail.isdigit() else (name, 0)


@dataclass
class ExpertAgent:
    """The expert for one episode. Call `act(observation, admissible)` once per step."""

    task_type: str
    goal: dict[str, str | None]
    homes: dict[str, str] | None = None  # object kind -> receptacle kind (lower case)
    rng: np.random.Generator | None = None
    detours: int = 0  # first moves to random receptacles other than the home (module docstring)
    seen: dict[str, list[str]] = field(default_factory=dict)
    visited: set[str] = field(default_factory=set)
    placed: set[str] = field(default_factory=set)
    placed_in: str | None = None
    receptacles: list[str] = field(default_factory=list)
    location: str | None = None
    holding: str | None = None
    treated: bool = False
    lamp_at: str | None = None
    _last: str | None = None
    _last_admissible: tuple[str, ...] = ()

    def act(self, observation: str, admissible: Sequence[str]) -> tuple[str, str]:
        """(thought, command) for the next step."""
        self._update(admissible)
        thought, command = self._decide(admissible)
        if command not in admissible:  # never expected; keep the episode going
            thought, command = "I am unsure what to do, so I look around.", "look"
        self._last, self._last_admissible = command, tuple(admissible)
        return thought, command

    # ---- bookkeeping from what happened ------------------------------------------------------
    def _update(self, admissible: Sequence[str]) -> None:
        for cmd in admissible:
            if cmd.startswith("go to ") and cmd[6:] not in self.receptacles:
                self.receptacles.append(cmd[6:])
        last = self._last
        if last is not None and last in self._last_admissible:  # admissible commands succeed
            self._apply(last)
        if self.location is not None and self.holding is None:  # full hands hide `take`s
            here = [m["obj"] for m in map(_TAKE.match, admissible) if m]
            if here or f"open {self.location}" not in admissible:
                self.seen[self.location] = here
        if self.location is not None:
            lamp = self.goal.get("toggle")
            if lamp and any(c.startswith(f"use {lamp}") for c in admissible):
                self.lamp_at = self.location

    def _apply(self, last: str) -> None:
        if last.startswith("go to "):
            self.location = last[6:]
            self.visited.add(self.location)
        elif (m := _TAKE.match(last)) is not None:
            self.holding, self.treated = m["obj"], False
        elif last.startswith("move ") and self.holding is not None:
            if self.location is not None and kind_of(self.location) == self.goal["parent"]:
                self.placed.add(self.holding)
                self.placed_in = self.location
            self.holding = None
        elif last.split(" ", 1)[0] in ("clean", "heat", "cool"):
            self.treated = True

    # ---- decisions ---------------------------------------------------------------------------
    def _decide(self, admissible: Sequence[str]) -> tuple[str, str]:
        if self.detours > 0 and self.holding is None and (detour := self._detour()) is not None:
            self.detours -= 1
            return detour
        if self.holding is None:
            return self._find_object(admissible)
        station = _STATIONS.get(self.task_type)
        if station is not None and not self.treated:
            return self._treat(admissible, *station)
        if self.task_type == "look_at_obj_in_light":
            return self._use_lamp(admissible)
        return self._place(admissible)

    def _wanted(self, name: str) -> bool:
        return kind_of(name) == self.goal["object"] and name not in self.placed

    def _find_object(self, admissible: Sequence[str]) -> tuple[str, str]:
        target = self.goal["object"]
        for cmd in admissible:
            m = _TAKE.match(cmd)
            if m and self._wanted(m["obj"]) and m["recep"] != self.placed_in:
                return f"There is a {m['obj']} here, which is what I need. I take it.", cmd
        for recep, objects in sorted(self.seen.items(), key=lambda kv: _natural(kv[0])):
            if recep not in (self.location, self.placed_in) and any(map(self._wanted, objects)):
                why = f"I saw a {target} at the {recep} earlier; I go back there."
                return why, f"go to {recep}"
        home = self._home()
        home_ahead = any(kind_of(r) == home and r not in self.visited for r in self.receptacles)
        if (
            self.location is not None
            and f"open {self.location}" in admissible
            and not (home_ahead and kind_of(self.location) != home)
        ):  # a reader of the skills goes to the home first rather than open a place on the way
            return f"The {self.location} is closed; I open it to look for a {target}.", (
                f"open {self.location}"
            )
        return self._explore(f"I have not found a {target} yet")

    def _explore(self, why: str) -> tuple[str, str]:
        unvisited = [r for r in self.receptacles if r not in self.visited]
        if not unvisited:  # everything seen once: look again where things may have been missed
            self.visited = {self.location} if self.location else set()
            unvisited = [r for r in self.receptacles if r not in self.visited] or self.receptacles
        target = self.goal["object"] or ""
        home = self._home()
        at_home = [r for r in unvisited if kind_of(r) == home]
        if at_home:
            return f"The skills say a {target} is kept on the {home}; I go there.", (
                f"go to {at_home[0]}"
            )
        likely = _likely_kinds(target)
        rank = {r: (kind_of(r) not in likely, _natural(r)) for r in unvisited}
        if self.rng is None:
            best = min(unvisited, key=rank.__getitem__)
        else:
            top = min(rank.values())
            ties = sorted((r for r in unvisited if rank[r][0] == top[0]), key=_natural)
            best = ties[int(self.rng.integers(len(ties)))]
        return f"{why}; the {best} is unexplored, so I check it.", f"go to {best}"

    def _home(self) -> str | None:
        """The receptacle kind the skills name for the goal's object (None: no skills)."""
        return (self.homes or {}).get(self.goal["object"] or "")

    def _detour(self) -> tuple[str, str] | None:
        home = self._home()
        away = [r for r in self.receptacles if kind_of(r) != home and r != self.location]
        if not away:
            return None
        away.sort(key=_natural)
        best = away[int(self.rng.integers(len(away)))] if self.rng is not None else away[0]
        return f"I look at the {best} first.", f"go to {best}"

    def _go_to_kind(self, kind: str, why: str) -> tuple[str, str]:
        options = sorted((r for r in self.receptacles if kind_of(r) == kind), key=_natural)
        if self.placed_in is not None and kind_of(self.placed_in) == kind:
            options = [self.placed_in]  # pick_two: both objects must share one receptacle
        if not options:
            return self._explore(f"I need a {kind} but have not seen one")
        return f"{why}; I go to the {options[0]}.", f"go to {options[0]}"

    def _treat(self, admissible: Sequence[str], station: str, verb: str) -> tuple[str, str]:
        for cmd in admissible:
            if cmd.startswith(f"{verb} {self.holding} with {station}"):
                return f"I hold the {self.holding} at the {station}; I {verb} it.", cmd
        return self._go_to_kind(station, f"The {self.holding} must be {verb}ed first")

    def _use_lamp(self, admissible: Sequence[str]) -> tuple[str, str]:
        lamp = self.goal["toggle"] or ""
        for cmd in admissible:
            if cmd.startswith(f"use {lamp}"):
                return f"I hold the {self.holding} next to the {lamp}; I turn it on.", cmd
        if self.lamp_at is not None:
            why = f"I saw the {lamp} at the {self.lamp_at}; I bring the {self.holding} there."
            return why, f"go to {self.lamp_at}"
        return self._explore(f"I hold the {self.holding} but have not found a {lamp}")

    def _place(self, admissible: Sequence[str]) -> tuple[str, str]:
        parent = self.goal["parent"] or ""
        at_parent = self.location is not None and kind_of(self.location) == parent
        if at_parent:
            move = f"move {self.holding} to {self.location}"
            if move in admissible:
                return f"I am at the {self.location} with the {self.holding}; I put it here.", move
            if f"open {self.location}" in admissible:
                return f"The {self.location} is closed; I open it first.", f"open {self.location}"
        return self._go_to_kind(parent, f"The {self.holding} belongs in a {parent}")


def _likely_kinds(obj_kind: str) -> frozenset[str]:
    """Receptacle kinds (lower case) that can hold `obj_kind`, from alfworld's table."""
    import alfworld.gen.constants as constants

    return frozenset(
        recep.lower()
        for recep, objects in constants.VAL_RECEPTACLE_OBJECTS.items()
        if any(o.lower() == obj_kind for o in objects)
    )


class ExpertPolicy(SlotAgentPolicy):
    """The expert over a batch: one `ExpertAgent` per slot, renewed when an episode starts.

    `explore_seed` (not None): random tie-breaks, seeded by (explore_seed, the episode's seed);
    `homes_for(record)`: the conventions the expert may use in that episode (None: none);
    `detours_for(record)`: its number of detours (ExpertAgent.detours; None: 0)."""

    def __init__(
        self,
        *,
        explore_seed: int | None = None,
        homes_for: Callable[[StepRecord], dict[str, str] | None] | None = None,
        detours_for: Callable[[StepRecord], int] | None = None,
    ) -> None:
        super().__init__()
        self.explore_seed = explore_seed
        self.homes_for = homes_for
        self.detours_for = detours_for

    def new_agent(self, record: StepRecord) -> ExpertAgent:
        rng = None
        if self.explore_seed is not None:
            rng = np.random.default_rng([self.explore_seed, record.info.get("episode_seed", 0)])
        homes = self.homes_for(record) if self.homes_for is not None else None
        detours = self.detours_for(record) if self.detours_for is not None else 0
        goal = dict(record.info["goal"])
        return ExpertAgent(record.info["task_type"], goal, homes, rng, detours=detours)

    def act(self, agent: ExpertAgent, record: StepRecord) -> str:
        return format_text(*agent.act(record.observation, record.info["admissible_actions"]))


class RandomPolicy:
    """Picks a uniformly random admissible action; seeded by (seed, task id, step) only, so its
    choices do not depend on batch size or position."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def __call__(self, records: Sequence[StepRecord]) -> list[str]:
        texts = []
        for record in records:
            actions = record.info.get("admissible_actions") or []
            if record.done or not actions:
                texts.append("")
                continue
            key = [self.seed, record.info.get("episode_seed", 0), record.info["step"]]
            choice = actions[int(np.random.default_rng(key).integers(len(actions)))]
            texts.append(format_text("I choose an admissible action at random.", choice))
        return texts
