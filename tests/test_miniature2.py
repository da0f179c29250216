"""The second miniature world (miniature2.py): two conventions per task on the real engine, a
warm-up split whose conventions are drawn per game and never state the world's, deterministic
games."""

import json
from pathlib import Path

import numpy as np
import pytest

from sdar_core.envs.alfworld import miniature2
from sdar_core.envs.alfworld.miniature2 import (
    CONVENTIONS,
    HOMES,
    PLACES,
    WARMUP_KINDS,
    sample_game,
    sample_warmup_game,
    skill_for,
    skill_text,
)

COUNTS = {"n_train": 3, "n_valid_seen": 2, "n_valid_unseen": 0, "n_warmup": 5}


@pytest.fixture(scope="module")
def games(tmp_path_factory) -> Path:
    from sdar_core.envs.alfworld import generate_games

    out = tmp_path_factory.mktemp("mini2") / "games"
    generate_games(out, seed=5, world="miniature2", **COUNTS)
    return out


def test_world_games_follow_both_conventions_and_places_are_closed():
    for seed in range(30):
        game = sample_game(np.random.default_rng(seed))
        assert sorted(r.kind for r in game.receptacles) == sorted([*HOMES, *PLACES])
        assert all(r.opened == (r.kind in HOMES) for r in game.receptacles)
        home, place = CONVENTIONS[game.object_target]
        assert [(t.kind, t.receptacle.kind) for t in game.things] == [(game.object_target, home)]
        assert game.parent_target == place
        # the task names the object only: where it goes is the second convention
        assert game.sentence == f"put the {game.object_target.lower()} away"


def test_warmup_games_draw_their_own_conventions_never_the_worlds():
    seen, kinds = set(), set()
    world_home = world_place = world_kind_games = 0
    for seed in range(2000):
        game, conv = sample_warmup_game(np.random.default_rng(seed))
        kind = conv["object"]
        assert kind == game.object_target and kind in {*WARMUP_KINDS, *CONVENTIONS}
        assert [t.receptacle.kind for t in game.things] == [conv["home"]]
        assert game.parent_target == conv["place"] and conv["place"] in PLACES
        assert set(conv) == {"object", "home", "place"}
        if kind in CONVENTIONS:  # the world's kinds: never the world's pair (home, place)
            home, place = CONVENTIONS[kind]
            assert (conv["home"], conv["place"]) != (home, place)
            world_kind_games += 1
            world_home += conv["home"] == home
            world_place += conv["place"] == place
        seen.add((conv["home"], conv["place"]))
        kinds.add(kind)
    assert {h for h, _ in seen} == set(HOMES) and {p for _, p in seen} == set(PLACES)
    assert kinds == {*WARMUP_KINDS, *CONVENTIONS}
    # each decision alone stays near chance: the world's home is neither taught nor ruled out
    # (an all-pairs draw would give 1/6; 2/17 with three places, 1/11 with two)
    assert 1 / 11 - 0.04 < world_home / world_kind_games < 1 / 6
    assert 0 < world_place / world_kind_games < 1 / 2


def test_warmup_games_do_not_depend_on_the_worlds_conventions_beyond_its_pairs(monkeypatch):
    """The warm-up draw reads the world's table only to leave out its pairs: with another table
    whose pairs are never drawn anyway, the same seeds give the same games."""
    first = [sample_warmup_game(np.random.default_rng(s)) for s in range(300)]
    other = {kind: ("Nowhere", "Nothing") for kind in CONVENTIONS}
    monkeypatch.setattr(miniature2, "CONVENTIONS", other)
    monkeypatch.setattr(miniature2, "_check_tables", lambda: None)
    second = [sample_warmup_game(np.random.default_rng(s)) for s in range(300)]
    left_out = [c for _, c in first if c["object"] in other]
    assert left_out and [c for _, c in second] != [c for _, c in first]  # pairs now allowed
    # the games whose pair the world's table does not concern are drawn the same way
    kinds = [c["object"] for _, c in first]
    assert kinds == [c["object"] for _, c in second]
    for (g1, c1), (g2, c2) in zip(first, second, strict=True):
        if c1["object"] in WARMUP_KINDS:
            assert (g1, c1) == (g2, c2)


def test_same_seed_same_games(games, tmp_path):
    from sdar_core.envs.alfworld import generate_games

    again = tmp_path / "again"
    generate_games(again, seed=5, world="miniature2", **COUNTS)
    first = sorted(p.relative_to(games) for p in games.rglob("*") if p.is_file())
    second = sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert first == second and len(first) > 10
    for rel in first:
        assert (games / rel).read_bytes() == (again / rel).read_bytes(), rel
    assert sample_warmup_game(np.random.default_rng(7)) == sample_warmup_game(
        np.random.default_rng(7)
    )


def test_generated_games_are_labelled_won_on_the_engine_and_carry_warmup_conventions(games):
    from sdar_core.envs.alfworld.generator import world_of

    manifest = json.loads((games / "manifest.json").read_text())
    assert world_of(games) == "miniature2" and manifest["counts"]["warmup"] == 5
    for game_file in games.glob("*/*/*/game.tw-pddl"):
        split = game_file.parts[-4]
        walkthrough = json.loads(game_file.read_text())["walkthrough"]
        assert walkthrough[-1].startswith("move ")
        has_conventions = (game_file.parent / miniature2.CONVENTIONS_FILE).is_file()
        assert has_conventions == (split == "warmup")


def test_the_conventions_win_in_five_steps(games):
    from sdar_core.envs import make

    env = make("alfworld", data_dir=games, split="valid_seen", max_steps=5, history_length=1)
    records = env.reset(task_ids=list(env.task_ids))
    first_prompt = env.prompts()[0]
    for step in range(5):
        texts = []
        for r in records:
            obj = r.info["goal"]["object"]
            kind = next(k for k in CONVENTIONS if k.lower() == obj)
            home, place = (x.lower() for x in CONVENTIONS[kind])
            plan = [
                f"go to {home} 1",
                f"take {obj} 1 from {home} 1",
                f"go to {place} 1",
                f"open {place} 1",
                f"move {obj} 1 to {place} 1",
            ]
            texts.append("" if r.done else f"<think>x</think><action>{plan[step]}</action>")
        records = env.step(texts)
    env.close()
    assert all(r.info["won"] and r.info["step"] == 5 for r in records)
    assert first_prompt[1]["content"].startswith("Task: put the ")  # the compact prompt


def test_library_states_the_worlds_conventions_and_is_retrieved_by_kind(tmp_path):
    from sdar_core.skills import IndexConfig, build_index, bundled_skills_dir, load_index
    from sdar_core.skills.documents import load_skills

    library = bundled_skills_dir("miniature2")
    by_name = {s.name: s for s in load_skills(library)}
    assert sorted(by_name) == sorted(f"miniature2-{k.lower()}" for k in CONVENTIONS)
    for kind, (home, place) in CONVENTIONS.items():
        assert (
            by_name[f"miniature2-{kind.lower()}"].body.strip()
            == skill_for(kind, home, place).body.strip()
        )
    build_index(library, tmp_path / "index", IndexConfig(dense=False))
    index = load_index(tmp_path / "index")
    for kind in CONVENTIONS:
        found = index.retrieve(f"put the {kind.lower()} away", k=1, include_general=False)
        assert [r.name for r in found] == [f"miniature2-{kind.lower()}"]


def test_warm_start_reads_per_game_skills_and_never_states_the_worlds_conventions(games):
    from sdar_core.train import SFTConfig
    from sdar_core.train.sft import expert_transcripts

    base = {"split": "warmup", "max_steps": 20, "history_length": 1, "explore": "random"}
    every = expert_transcripts(games, SFTConfig(**base, skills_fraction=1.0), skills_index=object())
    none = expert_transcripts(games, SFTConfig(**base))
    assert every and none
    world = {
        skill_text(kind, home, place) for kind, (home, place) in CONVENTIONS.items()
    }  # the world's skill bodies, each stating one kind's pair
    stated = [" ".join(m["content"] for m in messages) for messages, _ in [*every, *none]]
    assert sum("is kept on the" in prompt for prompt in stated) >= COUNTS["n_warmup"]
    for prompt in stated:  # no warm-up skill states a convention of the world
        assert not any(body in prompt for body in world)
        for kind, (home, place) in CONVENTIONS.items():
            k, h, p = kind.lower(), home.lower(), place.lower()
            assert f"a {k} is kept on the {h} and put away in the {p}." not in prompt
    assert all("# Skills" in m[0]["content"] for m, _ in every)
    # with its game's skill in the prompt the expert goes to the stated home first
    firsts = [(m, t) for m, t in every if "Now:" in m[1]["content"]]
    assert len(firsts) == COUNTS["n_warmup"]
    skill_free_firsts = [
        m for m, _ in none if "Now:" in m[1]["content"] and "# Skills" not in m[0]["content"]
    ]
    assert len(skill_free_firsts) == COUNTS["n_warmup"]  # every warm-up game is played both ways
    for messages, text in firsts:
        skill_line = messages[0]["content"]
        home = skill_line.split(" is kept on the ")[1].split(" ")[0]
        assert f"<action>go to {home} 1</action>" in text
    for game_dir in games.glob("warmup/*/*"):
        conv = miniature2.read_conventions(game_dir)
        assert (conv["home"], conv["place"]) != CONVENTIONS.get(conv["object"])


def test_run_config_selects_the_second_miniature():
    from sdar_core.run import RunConfig

    mini2 = RunConfig(world="miniature2")
    assert mini2.index.library == "miniature2" and mini2.n_warmup_games == 96
    assert mini2.sft.split == "warmup" and mini2.sft.skills_fraction == 0.5
    assert mini2.rollout.split == "train" and mini2.eval.split == "valid_seen"
    assert mini2.rollout.max_steps == 7 and mini2.eval.max_steps == 7
    assert mini2.teacher.skills_k == 1 and not mini2.teacher.include_general
    assert RunConfig().world == "miniature" and RunConfig().n_warmup_games == 0
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="n_warmup_games=0"):
        RunConfig(world="miniature2", n_warmup_games=0)


def test_skill_detours_start_reading_episodes_off_the_skills_path_untrained(games):
    """With skill_detours, an episode with its skill starts with 0..n moves elsewhere that are
    played but not trained on; every trained step then goes to the home the skill names before
    anything else, from wherever the detours left it (seeded: the same transcripts twice)."""
    from sdar_core.train import SFTConfig
    from sdar_core.train.sft import expert_transcripts

    base = {"split": "warmup", "max_steps": 20, "history_length": 1, "explore": "random"}
    config = SFTConfig(**base, skills_fraction=1.0, skill_detours=2, episodes_per_task=2)
    detoured = expert_transcripts(games, config, skills_index=object())
    assert detoured == expert_transcripts(games, config, skills_index=object())
    on_path = expert_transcripts(
        games, config.model_copy(update={"skill_detours": 0}), skills_index=object()
    )
    off_path = 0
    for messages, text in detoured:
        skill = messages[0]["content"]
        home = skill.split(" is kept on the ")[1].split(" ")[0]
        place = skill.split(" put away in the ")[1].split(".")[0]
        state = messages[1]["content"].split("\nActions:")[0]
        if "You arrive at" in state and not any(f"arrive at {r} 1" in state for r in (home, place)):
            off_path += 1  # where the detours left it: the trained step heads for the home
            assert text.endswith(f"<action>go to {home} 1</action>"), (state, text)
    assert off_path > 0
    # the detours are not trained on: each episode trains the same five steps as on its path
    assert len(detoured) == len(on_path) == 5 * 2 * COUNTS["n_warmup"]
    with pytest.raises(Exception, match="skill_detours must be >= 0"):
        SFTConfig(**base, skill_detours=-1)
