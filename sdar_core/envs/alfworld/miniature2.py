"""A second miniature world, built so that SDAR's teacher can matter: two decisions per task.

This is **not ALFWorld**: like `miniature.py` it is a configuration of our game generator played
on the same real engine (alfworld's domain and goal formulas), small enough for a tiny model on
2 CPU cores. It differs from the first miniature where that one left nothing for SDAR to add
(one piece of knowledge per task, so a lost episode almost never held a right decision):

- the task names only the object ("put the book away"); the engine's goal is alfworld's
  pick_and_place_simple with the object's **place** as the target receptacle;
- every object kind follows two household conventions (`CONVENTIONS`): the open surface it lies
  on (its **home**, one of `HOMES`) and the closed receptacle it is put away in (its **place**,
  one of `PLACES`: drawer, cabinet, box, all closed). Each game holds one object, at its home.
  A task needs both: where to look, and where to put it (and to open it first);
- one room: the six homes and the three places, one of each, in a seeded order.

The optimal play is five steps (go to the home, take, go to the place, open it, move). The skills
(`library/miniature2/`, one per kind, retrieved by BM25 from the task sentence) state both
conventions, so a teacher that reads them plays optimally; a student without them guesses both.

The warm start must teach a model to *read* such skills without teaching it this world's
conventions. So it plays other games, the `warmup` split: each game with its own conventions
drawn at random (home from `HOMES`, place from the `PLACES` that can hold the kind) and stated
by a per-game skill (`skill_for`, written next to the game as `conventions.json`). Its objects
are of other kinds (`WARMUP_KINDS`) and of the world's kinds (a tiny model never produces a
token it was not trained to produce), drawn the same way for both, with one exception: a kind
of the world never gets the world's pair (home, place), so no warm-up skill states a convention
of this world. Each decision alone stays near chance (the world's home of a kind is drawn with
probability 2/17 or 1/11 instead of 1/6: measured, excluding the world's home and place
outright taught the model that a book is never on the shelf, and with the world's skill in its
prompt it then reached only 0.33). What the warm-started student knows of this world is that
things lie on surfaces and go into closed receptacles; which ones it must learn from reward or
from the teacher.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from sdar_core.envs.alfworld import world
from sdar_core.envs.alfworld.scene import Game, Receptacle, Thing, _receptacle_id

__all__ = [
    "CONVENTIONS",
    "CONVENTIONS_FILE",
    "HOMES",
    "PLACES",
    "WARMUP_KINDS",
    "WARMUP_SPLIT",
    "WORLD_NAME",
    "read_conventions",
    "sample_game",
    "sample_warmup_game",
    "skill_for",
]

WORLD_NAME = "miniature2"
TASK_TYPE = "pick_and_place_simple"
WARMUP_SPLIT = "warmup"  # the warm start's games: other kinds, conventions drawn per game
CONVENTIONS_FILE = "conventions.json"  # next to each warm-up game: its drawn conventions
HOMES: tuple[str, ...] = ("Shelf", "Desk", "Dresser", "SideTable", "CoffeeTable", "CounterTop")
PLACES: tuple[str, ...] = ("Drawer", "Cabinet", "Box")
# the world's fixed conventions: object kind -> (home, place); the RL and evaluation games
CONVENTIONS: dict[str, tuple[str, str]] = {
    "Book": ("Shelf", "Cabinet"),
    "Pen": ("Desk", "Drawer"),
    "KeyChain": ("Dresser", "Box"),
    "CellPhone": ("SideTable", "Drawer"),
    "Vase": ("CoffeeTable", "Box"),
    "CreditCard": ("CounterTop", "Drawer"),
    "Candle": ("Shelf", "Box"),
    "Watch": ("Desk", "Box"),
}
# the warm start's other kinds (it plays these and the world's kinds, conventions drawn per game)
WARMUP_KINDS: tuple[str, ...] = (
    "AlarmClock", "Bowl", "CD", "Cloth", "Cup", "Glassbottle", "Mug", "Newspaper", "Pencil",
    "Plate", "RemoteControl", "SprayBottle", "Statue", "TissueBox", "ToiletPaper", "WineBottle",
)  # fmt: skip
SCENE_BASE = 950  # scene numbers 951-...: never an ALFRED floor plan nor the first miniature's


@functools.cache
def places_for(kind: str) -> tuple[str, ...]:
    """The places that can hold `kind`, by alfworld's tables."""
    return tuple(p for p in PLACES if world.can_contain(p, kind))


@functools.cache
def _check_tables() -> None:
    for recep in HOMES:
        if world.openable(recep):
            raise RuntimeError(f"miniature2: home {recep} is openable: fix HOMES")
    for recep in PLACES:
        if not world.openable(recep):
            raise RuntimeError(f"miniature2: place {recep} is not closed: fix PLACES")
    for kind in (*CONVENTIONS, *WARMUP_KINDS):
        bad = [h for h in HOMES if not world.can_contain(h, kind)]
        if bad or not places_for(kind):
            raise RuntimeError(f"miniature2: {kind} cannot lie on {bad} or has no place")
    for kind, (home, place) in CONVENTIONS.items():
        if home not in HOMES or place not in places_for(kind):
            raise RuntimeError(f"miniature2: {kind}'s conventions {home}, {place} do not fit")
    if set(WARMUP_KINDS) & set(CONVENTIONS):
        raise RuntimeError("miniature2: a warm-up kind is one of the world's kinds")


def _game(rng: np.random.Generator, kind: str, home: str, place: str) -> Game:
    kinds = [*HOMES, *PLACES]
    receps = [
        Receptacle(_receptacle_id(k, 1), k, f"loc_bar_{i + 1}", opened=not world.openable(k))
        for i, k in enumerate(kinds[j] for j in rng.permutation(len(kinds)))
    ]
    by_kind = {r.kind: r for r in receps}
    layout = world.Layout(
        room="Miniature2",
        scene=SCENE_BASE + int(rng.integers(1, 50)),
        receptacles=tuple((k, 1) for k in sorted(kinds)),
    )
    return Game(
        task_type=TASK_TYPE,
        layout=layout,
        receptacles=tuple(receps),
        things=(Thing(f"{kind}_bar_1", kind, by_kind[home]),),
        object_target=kind,
        parent_target=place,
        toggle_target="",
        sentence=f"put the {kind.lower()} away",
    )


def sample_game(rng: np.random.Generator) -> Game:
    """One game of the world: a kind of `CONVENTIONS` at its home, to be put in its place."""
    _check_tables()
    kinds = sorted(CONVENTIONS)
    kind = kinds[int(rng.integers(len(kinds)))]
    return _game(rng, kind, *CONVENTIONS[kind])


def sample_warmup_game(rng: np.random.Generator) -> tuple[Game, dict]:
    """One warm-up game and its conventions {"object", "home", "place"}, drawn for this game
    (a kind of the world never gets the world's pair: module docstring)."""
    _check_tables()
    kinds = (*WARMUP_KINDS, *sorted(CONVENTIONS))
    kind = kinds[int(rng.integers(len(kinds)))]
    pairs = [(h, p) for h in HOMES for p in places_for(kind) if (h, p) != CONVENTIONS.get(kind)]
    home, place = pairs[int(rng.integers(len(pairs)))]
    conventions = {"object": kind, "home": home, "place": place}
    return _game(rng, kind, home, place), conventions


def skill_text(kind: str, home: str, place: str) -> str:
    """The skill body stating one kind's conventions (the library's and the warm start's)."""
    obj, home, place = kind.lower(), home.lower(), place.lower()
    return (
        f"# Putting a {obj} away\n\nIn this household a {obj} is kept on the {home} and put "
        f"away in the {place}. Go to {home} 1 and take the {obj}; then go to {place} 1, open "
        f"it, and move the {obj} into it."
    )


def skill_for(kind: str, home: str, place: str):
    """The skill document stating one kind's conventions."""
    from sdar_core.skills.documents import Skill

    return Skill(
        name=f"miniature2-{kind.lower()}",
        environment="alfworld",
        task_types=(TASK_TYPE,),
        keywords=(kind.lower(),),
        summary=f"Where a {kind.lower()} is kept in the miniature2 world and where it goes.",
        body=skill_text(kind, home, place),
    )


def write_conventions(folder: Path, conventions: dict[str, str]) -> None:
    (folder / CONVENTIONS_FILE).write_text(json.dumps(conventions, sort_keys=True))


def read_conventions(folder: Path) -> dict[str, str] | None:
    """The conventions written next to a warm-up game (None for the world's own games)."""
    path = Path(folder) / CONVENTIONS_FILE
    return json.loads(path.read_text()) if path.is_file() else None
