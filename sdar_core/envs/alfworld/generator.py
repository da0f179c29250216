"""Write generated ALFWorld games in the official folder layout, each verified on the engine.

`generate_games(out_dir, n_train=…, n_valid_seen=…, n_valid_unseen=…, seed=…)` writes

    out_dir/{train,valid_seen,valid_unseen}/<task_type>-<Object>-None-<Parent|Lamp>-<scene>/
        trial_S<seed>_<index>/{game.tw-pddl, traj_data.json}
    out_dir/manifest.json   (generator version, seed, counts, task ids per split)

mirroring ALFWorld's json_2.1.1 layout, so `make("alfworld", data_dir=out_dir, split="train")`
loads it exactly like official data. Task types rotate through `task_types` (balanced); every
other choice comes from a generator seeded by (seed, split, index), so the same seed writes the
same games whatever else is generated. valid_unseen uses held-out layouts and object kinds.

Every game is played by the exploring expert on the real engine before it is kept; its commands
become the game's `walkthrough`. A game the expert cannot win within `max_expert_steps` is a bug
in the generator or the expert, and generation stops with an error naming the game.

Output is atomic: everything is written under a temporary folder next to `out_dir` and renamed
into place at the end; an existing games folder (its manifest's `kind`) is replaced only with
`overwrite=True`, and any other non-empty folder never (`sdar_core.outputs`). The temporary
folder is removed however generation ends: an error, Ctrl-C, or SIGTERM (`kill PID`), which
would otherwise end the process without running any clean-up; after the clean-up the signal
takes its course as before (the process ends by it, or its earlier handler runs). The counts are
bounded (`sdar_core.limits`: n_train_games for train, n_valid_games for the validation splits).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from sdar_core.envs.alfworld import miniature2
from sdar_core.envs.alfworld.config import SPLITS, TASK_TYPES
from sdar_core.envs.alfworld.engine import GameEngine
from sdar_core.envs.alfworld.expert import ExpertAgent
from sdar_core.envs.alfworld.games import GAME_FILE, TRAJ_FILE
from sdar_core.envs.alfworld.miniature import HOMES as MINIATURE_HOMES
from sdar_core.envs.alfworld.miniature import TASK_TYPE as MINIATURE_TASK_TYPE
from sdar_core.envs.alfworld.miniature import WORLD_NAME as MINIATURE
from sdar_core.envs.alfworld.miniature import sample_miniature_game
from sdar_core.envs.alfworld.miniature2 import WARMUP_SPLIT
from sdar_core.envs.alfworld.miniature2 import WORLD_NAME as MINIATURE2
from sdar_core.envs.alfworld.scene import Game, problem_text, sample_game
from sdar_core.errors import ConfigError, SdarError
from sdar_core.limits import check_limit
from sdar_core.outputs import check_output_dir, manifest_of

__all__ = ["GENERATOR_VERSION", "WORLDS", "GenerationError", "generate_games", "write_game"]

GENERATOR_VERSION = "1"
KIND = "alfworld_games"  # the manifest's marker: only a folder carrying it is ever replaced
# "alfworld": rooms, objects and the six task types as in ALFWorld; "miniature": the small
# world of miniature.py (one task type, household conventions), labelled as such everywhere;
# "miniature2": miniature2.py (two conventions per task, closed places, a warm-up split)
WORLDS = ("alfworld", MINIATURE, MINIATURE2)


class GenerationError(SdarError):
    """A generated game failed verification on the engine (a bug, not bad input)."""


class _Signalled(BaseException):  # noqa: N818 - not an error: unwinds to the clean-up
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_signalled(signum: int, frame: object) -> None:
    raise _Signalled(signum)


@contextlib.contextmanager
def _signals_unwind() -> Iterator[None]:
    """SIGTERM and SIGINT unwind the block as an exception would (its `finally` clauses run),
    then take their course as before: the earlier Python handler runs, or the default action
    ends the process by the signal. Signals that were ignored stay ignored."""
    if threading.current_thread() is not threading.main_thread():  # only it receives signals
        yield
        return
    watched = [s for s in (signal.SIGTERM, signal.SIGINT) if signal.getsignal(s) != signal.SIG_IGN]
    previous = {sig: signal.signal(sig, _raise_signalled) for sig in watched}
    try:
        yield
    except _Signalled as stop:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        handler = previous[stop.signum]
        if callable(handler):
            handler(stop.signum, None)  # e.g. KeyboardInterrupt, or sdar run's RunInterrupted
        os.kill(os.getpid(), stop.signum)  # the default action: end by the signal
        raise  # not reached unless a handler returned
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _data_file(name: str) -> str:
    import alfworld

    return (Path(alfworld.__file__).parent / "data" / name).read_text()


def game_json(game: Game, name: str, walkthrough: list[str] | None) -> dict:
    """game.tw-pddl content: alfworld's domain and grammar (with the task), our problem."""
    data = {
        "pddl_domain": _data_file("alfred.pddl"),
        "grammar": _data_file("alfred.twl2").replace("UNKNOWN GOAL", game.sentence),
        "pddl_problem": problem_text(game, name),
        "solvable": True,
    }
    if walkthrough is not None:
        data["walkthrough"] = walkthrough
    return data


def solve(engine: GameEngine, game_file: Path, game: Game, max_steps: int) -> list[str] | None:
    """Play the expert on the engine; its commands if it wins within max_steps, else None."""
    state = engine.reset(game_file)
    goal = {
        "object": game.object_target.lower(),
        "parent": game.parent_target.lower() or None,
        "toggle": game.toggle_target.lower() or None,
    }
    agent = ExpertAgent(game.task_type, goal)
    commands = []
    for _ in range(max_steps):
        _thought, command = agent.act(state.feedback, state.admissible)
        commands.append(command)
        state = engine.step(command)
        if state.won:
            return commands
    return None


def write_game(folder: Path, game: Game, task_id: str, walkthrough: list[str] | None) -> None:
    """Write one game folder's two files."""
    folder.mkdir(parents=True, exist_ok=True)
    name = "plan_" + task_id.replace("/", "_").replace("-", "_")
    (folder / GAME_FILE).write_text(json.dumps(game_json(game, name, walkthrough)))
    (folder / TRAJ_FILE).write_text(json.dumps(game.traj_data(task_id), indent=1))


def _task_id(game: Game, seed: int, index: int) -> str:
    target = game.parent_target or game.toggle_target
    family = f"{game.task_type}-{game.object_target}-None-{target}-{game.layout.scene}"
    return f"{family}/trial_S{seed}_{index:05d}"


def _generate_split(
    root: Path, split: str, count: int, seed: int, task_types, engine, max_steps: int, world: str,
    balanced_kinds: bool = False,
) -> list[str]:  # fmt: skip
    ids = []
    kinds = sorted(MINIATURE_HOMES)
    unseen = split == "valid_unseen"
    conventions = None
    for index in range(count):
        split_number = SPLITS.index(split) if split in SPLITS else len(SPLITS)
        rng = np.random.default_rng([seed, split_number, index])
        if world == MINIATURE:
            game = sample_miniature_game(rng, kinds[index % len(kinds)] if balanced_kinds else None)
        elif world == MINIATURE2 and split == WARMUP_SPLIT:
            game, conventions = miniature2.sample_warmup_game(rng)
        elif world == MINIATURE2:
            game = miniature2.sample_game(rng)
        else:
            game = sample_game(task_types[index % len(task_types)], rng, unseen=unseen)
        task_id = _task_id(game, seed, index)
        folder = root / split / task_id
        write_game(folder, game, task_id, walkthrough=None)
        walkthrough = solve(engine, folder / GAME_FILE, game, max_steps)
        if walkthrough is None:
            raise GenerationError(
                f"generated game {split}/{task_id} (seed {seed}) was not won by the expert within "
                f"{max_steps} steps on the engine: this is a generator bug, please report it"
            )
        write_game(folder, game, task_id, walkthrough)
        if conventions is not None:
            miniature2.write_conventions(folder, conventions)
        ids.append(task_id)
    return ids


def world_of(folder: Path) -> str:
    """The world a games folder was generated in ("alfworld" for official or older games)."""
    manifest = manifest_of(Path(folder))
    return (manifest or {}).get("world", "alfworld")


def is_games_dir(folder: Path) -> bool:
    """Whether `folder` holds games written by `generate_games` (its manifest's kind; folders
    written before the kind was recorded are recognised by their generator version)."""
    manifest = manifest_of(folder)
    if manifest is None:
        return False
    legacy = "kind" not in manifest and "generator_version" in manifest and "games" in manifest
    return manifest.get("kind") == KIND or legacy


def generate_games(
    out_dir: Path | str,
    *,
    n_train: int,
    n_valid_seen: int,
    n_valid_unseen: int,
    seed: int = 0,
    task_types: tuple[str, ...] = TASK_TYPES,
    max_expert_steps: int = 50,
    overwrite: bool = False,
    world: str = "alfworld",
    n_warmup: int = 0,
    balanced_kinds: bool = False,
) -> dict:
    """Generate, verify and write games; returns the manifest (also written to manifest.json).
    `world="miniature"` writes the miniature world's games (miniature.py; task_types ignored);
    `world="miniature2"` those of miniature2.py, plus `n_warmup` warm-up games (split
    "warmup": other kinds, conventions drawn per game). `balanced_kinds` (world "miniature" only)
    gives the i-th game of each split the i-th object kind in turn instead of a random one, so a
    small split holds every kind equally often (to within one game)."""
    out_dir = Path(out_dir)
    if world not in WORLDS:
        raise ConfigError(f"world={world!r} is not a game world: choose one of {list(WORLDS)}")
    if world in (MINIATURE, MINIATURE2):
        task_types = (MINIATURE_TASK_TYPE,)
    counts = {"train": n_train, "valid_seen": n_valid_seen, "valid_unseen": n_valid_unseen}
    if world == MINIATURE2:
        counts[WARMUP_SPLIT] = n_warmup
    elif n_warmup:
        raise ConfigError(f"n_warmup={n_warmup}: only world='miniature2' has warm-up games")
    if balanced_kinds and world != MINIATURE:
        raise ConfigError(
            f"balanced_kinds is a setting of world {MINIATURE!r}, got world={world!r}: leave it "
            "out or generate the miniature world"
        )
    if any(n < 0 for n in counts.values()) or not any(counts.values()):
        raise ConfigError(f"game counts {counts} must be >= 0 with at least one > 0")
    for split, n in counts.items():
        check_limit("n_valid_games" if split.startswith("valid") else "n_train_games", n)
    unknown = sorted(set(task_types) - set(TASK_TYPES))
    if unknown or not task_types:
        raise ConfigError(f"task_types {unknown or '(empty)'}: choose from {list(TASK_TYPES)}")
    check_output_dir(
        out_dir, is_own=is_games_dir, what="a games folder", command="sdar gen-games",
        overwrite=overwrite,
    )  # fmt: skip
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with _signals_unwind():
        return _write_games(
            out_dir, counts, seed, task_types, max_expert_steps, overwrite, world, balanced_kinds
        )


def _write_games(
    out_dir, counts, seed, task_types, max_expert_steps, overwrite, world, balanced_kinds=False
) -> dict:
    """Generate the games under a temporary folder next to `out_dir`, then rename it into place;
    the temporary folder is removed whatever happens."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        engine = GameEngine()
        try:
            games = {
                split: _generate_split(
                    tmp,
                    split,
                    n,
                    seed,
                    tuple(task_types),
                    engine,
                    max_expert_steps,
                    world,
                    balanced_kinds,
                )
                for split, n in counts.items()
            }
        finally:
            engine.close()
        manifest = {
            "kind": KIND,
            "generator_version": GENERATOR_VERSION,
            "world": world,
            "seed": seed,
            "counts": counts,
            "task_types": list(task_types),
            "games": games,
        }
        if balanced_kinds:  # recorded only when set: earlier manifests stay as they were
            manifest["balanced_kinds"] = True
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        if check_output_dir(  # again: the folder may have changed while the games were made
            out_dir, is_own=is_games_dir, what="a games folder", command="sdar gen-games",
            overwrite=overwrite,
        ):  # fmt: skip
            shutil.rmtree(out_dir)
        elif out_dir.exists():
            out_dir.rmdir()
        tmp.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest
