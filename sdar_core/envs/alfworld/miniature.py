"""A miniature world for the embedded run: small rooms whose objects follow household conventions.

This is **not ALFWorld**. It is a configuration of our game generator, played on the same real
engine with alfworld's domain and goal formulas, made small enough that a tiny model trained on
2 CPU cores can learn it, and made so that the skills hold knowledge the student lacks:

- one task type, pick_and_place_simple ("put some book on diningtable");
- a room of `N_CANDIDATES` receptacles where objects live, plus the task's target surface
  (dining table or countertop, never anybody's home), one of each kind, none of them closed;
- every object kind has a fixed home (`HOMES`: books on the shelf, pens on the desk, ...); each
  game puts the target object, and one object of every other kind whose home is in the room, at
  its home. The skills (`library/miniature/`, one per object kind) state these conventions, so a
  teacher that reads them knows where to go first; a student without them must search.

The optimal play is four steps (go to the home, take, go to the target, move), so with a short
step limit a searching student wins only when it finds the object early; a policy that has
learned the conventions (from reward, or distilled from the skill-reading teacher) wins nearly
always. valid_seen and valid_unseen games use other draws of the same conventions (there are no
held-out kinds here: the conventions are the knowledge being learned).
"""

from __future__ import annotations

import numpy as np

from sdar_core.envs.alfworld import world
from sdar_core.envs.alfworld.scene import Game, Receptacle, Thing, _receptacle_id, _sentence

__all__ = ["HOMES", "N_CANDIDATES", "TARGETS", "WORLD_NAME", "sample_miniature_game"]

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
N_CANDIDATES = 4  # receptacles where objects may be, the object's home among them
SCENE_BASE = 900  # scene numbers 901-...: never an ALFRED floor plan


def _check_tables() -> None:
    for obj, home in HOMES.items():
        for recep in (home, *TARGETS):
            if not world.can_contain(recep, obj) or world.openable(recep):
                raise RuntimeError(f"miniature: {recep} cannot hold {obj} openly: fix HOMES")


def sample_miniature_game(rng: np.random.Generator, *, n_candidates: int = N_CANDIDATES) -> Game:
    """Draw one miniature game (module docstring)."""
    _check_tables()
    objects = sorted(HOMES)
    target = objects[int(rng.integers(len(objects)))]
    others = sorted(set(HOMES.values()) - {HOMES[target]})
    chosen = [HOMES[target], *rng.choice(others, size=n_candidates - 1, replace=False).tolist()]
    parent = TARGETS[int(rng.integers(len(TARGETS)))]
    kinds = [chosen[i] for i in rng.permutation(len(chosen))] + [parent]
    receps = [
        Receptacle(_receptacle_id(kind, 1), kind, f"loc_bar_{i + 1}", opened=True)
        for i, kind in enumerate(kinds)
    ]
    by_kind = {r.kind: r for r in receps}
    things = [
        Thing(f"{obj}_bar_1", obj, by_kind[home])
        for obj, home in sorted(HOMES.items())
        if home in by_kind
    ]
    scene = SCENE_BASE + int(rng.integers(1, 100))
    layout = world.Layout(
        room="Miniature", scene=scene, receptacles=tuple((k, 1) for k in sorted(kinds))
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
