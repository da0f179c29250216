"""A miniature world for the embedded run: small rooms whose objects follow household conventions.

This is **not ALFWorld**. It is a configuration of our game generator, played on the same real
engine with alfworld's domain and goal formulas, made small enough that a tiny model trained on
2 CPU cores can learn it, and made so that the skills hold knowledge the student lacks:

- one task type, pick_and_place_simple ("put some book on diningtable");
- one room: the eight homes of `HOMES` and the two target surfaces (dining table, countertop;
  nobody's home), one of each kind, none of them closed;
- every object kind has a fixed home (`HOMES`: books on the shelf, pens on the desk, ...); each
  game holds one object, the task's, at its home, so a searcher knows it has found the object
  when a `take` is offered (telling objects apart is not part of the miniature).
  The skills (`library/miniature/`, one per object kind) state these conventions, so a teacher
  that reads them knows where to go first; a student without them must search.

Its prompt is short (`build_compact_messages`, ~110 tiny-tokenizer tokens instead of ~390): the
rules in one sentence, the task, the last steps, what the agent sees now and the actions that do
something (looking, examining and the inventory are admissible but not listed), so that a tiny
model trains on mostly informative tokens.

The optimal play is four steps (go to the home, take, go to the target, move), so with a short
step limit a searching student wins only when it finds the object early; a policy that has
learned the conventions (from reward, or distilled from the skill-reading teacher) wins nearly
always. valid_seen and valid_unseen games use other draws of the same conventions (there are no
held-out kinds here: the conventions are the knowledge being learned). Each game's kind is drawn
at random unless the games are generated with balanced kinds (`generate_games(balanced_kinds=
True)`: the i-th game of a split has kind `sorted(HOMES)[i % 8]`), which gives every kind an equal
share of a small game set.
"""

from __future__ import annotations

import functools

import numpy as np

from sdar_core.envs.alfworld import world
from sdar_core.envs.alfworld.scene import Game, Receptacle, Thing, _receptacle_id, _sentence
from sdar_core.envs.base import EpisodeHistory
from sdar_core.envs.prompting import squash

__all__ = ["HOMES", "TARGETS", "WORLD_NAME", "build_compact_messages", "sample_miniature_game"]

WORLD_NAME = "miniature"
TASK_TYPE = "pick_and_place_simple"
# object kind -> the receptacle kind it is kept on (alfworld's tables allow every pair)
HOMES: dict[str, str] = {
    "Book": "Shelf",
    "Pen": "Desk",
    "KeyChain": "Dresser",
    "CellPhone": "SideTable",
    "Vase": "CoffeeTable",
    "RemoteControl": "Sofa",
    "Laptop": "Bed",
    "CreditCard": "ArmChair",
}
TARGETS: tuple[str, ...] = ("DiningTable", "CounterTop")
SCENE_BASE = 900  # scene numbers 901-...: never an ALFRED floor plan


@functools.cache
def _check_tables() -> None:
    for obj, home in HOMES.items():
        for recep in (home, *TARGETS):
            if not world.can_contain(recep, obj) or world.openable(recep):
                raise RuntimeError(f"miniature: {recep} cannot hold {obj} openly: fix HOMES")


def sample_miniature_game(rng: np.random.Generator, kind: str | None = None) -> Game:
    """Draw one miniature game (module docstring); `kind` fixes the task's object kind (the
    draw it replaces is still taken, so the rest of the game is the one drawn without it)."""
    _check_tables()
    objects = sorted(HOMES)
    target = objects[int(rng.integers(len(objects)))]
    if kind is not None:
        if kind not in HOMES:
            raise ValueError(f"kind {kind!r} is not a miniature object kind: one of {objects}")
        target = kind
    parent = TARGETS[int(rng.integers(len(TARGETS)))]
    kinds = sorted(set(HOMES.values()) | set(TARGETS))
    receps = [
        Receptacle(_receptacle_id(kind, 1), kind, f"loc_bar_{i + 1}", opened=True)
        for i, kind in enumerate(kinds[i] for i in rng.permutation(len(kinds)))
    ]
    by_kind = {r.kind: r for r in receps}
    things = [Thing(f"{target}_bar_1", target, by_kind[HOMES[target]])]
    layout = world.Layout(
        room="Miniature",
        scene=SCENE_BASE + int(rng.integers(1, 100)),
        receptacles=tuple((k, 1) for k in kinds),
    )
    return Game(
        task_type=TASK_TYPE,
        layout=layout,
        receptacles=tuple(receps),
        things=tuple(things),
        object_target=target,
        parent_target=parent,
        toggle_target="",
        sentence=_sentence(TASK_TYPE, target, parent, "", rng),
    )


COMPACT_SYSTEM = (
    "You act in a small text household. Reply with a short thought in <think></think>, then one "
    "listed action in <action></action>."
)
_BANNER = "-= Welcome to TextWorld, ALFRED! =-"
_UNLISTED = ("examine ", "inventory", "look")


def _observation(text: str) -> str:
    text = squash(text).replace(_BANNER, "").strip()
    head, sep, _task = text.partition(" Your task is to:")
    return head if sep else text


def build_compact_messages(
    history: EpisodeHistory, admissible, *, history_length: int
) -> list[dict[str, str]]:
    """The miniature's prompt for one step (module docstring)."""
    turns = history.turns[-history_length:] if history_length > 0 else ()
    observations = [history.initial_observation] + [t.observation for t in history.turns]
    lines = [f"Task: {history.task_text}"]
    first = len(history.turns) - len(turns)
    for i, turn in enumerate(turns, start=first):
        action = turn.action if turn.action is not None else "(invalid)"
        lines.append(f"Step {i + 1}: {action} -> {_observation(observations[i + 1])}")
    if not turns:  # the first look around names every receptacle, as the action list does
        lines.append(f"Now: {_observation(observations[-1]).split('. ')[0]}.")
    listed = [a for a in admissible if not a.startswith(_UNLISTED)]
    lines.append("Actions: " + " | ".join(listed))
    return [
        {"role": "system", "content": COMPACT_SYSTEM},
        {"role": "user", "content": "\n".join(lines)},
    ]
