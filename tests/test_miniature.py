"""The miniature world: its games on the real engine, its prompt, the expert's options and the
warm start that puts skills in part of the episodes."""

import json
from pathlib import Path

import numpy as np
import pytest

from sdar_core.envs.alfworld.miniature import HOMES, TARGETS, sample_miniature_game


@pytest.fixture(scope="module")
def mini_games(tmp_path_factory) -> Path:
    from sdar_core.envs.alfworld import generate_games

    out = tmp_path_factory.mktemp("mini") / "games"
    generate_games(out, n_train=4, n_valid_seen=2, n_valid_unseen=0, seed=3, world="miniature")
    return out


@pytest.fixture(scope="module")
def mini_index(tmp_path_factory) -> Path:
    from sdar_core.skills import IndexConfig, build_index, bundled_skills_dir

    out = tmp_path_factory.mktemp("mini_index") / "index"
    build_index(bundled_skills_dir("miniature"), out, IndexConfig(dense=False))
    return out


def test_every_object_is_at_its_home_and_the_task_names_a_target():
    for seed in range(20):
        game = sample_miniature_game(np.random.default_rng(seed))
        assert sorted(r.kind for r in game.receptacles) == sorted({*HOMES.values(), *TARGETS})
        assert all(r.opened for r in game.receptacles)
        assert [(t.kind, t.receptacle.kind) for t in game.things] == [
            (game.object_target, HOMES[game.object_target])
        ]
        assert game.object_target in HOMES and game.parent_target in TARGETS
        assert game.task_type == "pick_and_place_simple"


def test_generated_games_are_labelled_and_won_by_the_expert_on_the_engine(mini_games):
    from sdar_core.envs.alfworld.generator import world_of

    manifest = json.loads((mini_games / "manifest.json").read_text())
    assert manifest["world"] == "miniature" and world_of(mini_games) == "miniature"
    for game_file in mini_games.glob("train/*/*/game.tw-pddl"):
        walkthrough = json.loads(game_file.read_text())["walkthrough"]
        assert walkthrough[-1].startswith("move ")  # won by putting the object on the target
        assert 4 <= len(walkthrough) <= 12


def _play(games: Path, actions_for):
    from sdar_core.envs import make

    env = make("alfworld", data_dir=games, split="train", max_steps=6, history_length=1)
    records = env.reset(task_ids=list(env.task_ids))
    prompts = [env.prompts()]
    for step in range(6):
        texts = [
            "" if r.done else f"<think>x</think><action>{actions_for(r, step)}</action>"
            for r in records
        ]
        records = env.step(texts)
        prompts.append(env.prompts())
    env.close()
    return records, prompts


def test_the_convention_wins_in_four_steps_and_the_prompt_is_compact(mini_games):
    def convention(record, step):
        goal = record.info["goal"]
        home = next(h for o, h in HOMES.items() if o.lower() == goal["object"]).lower()
        obj, parent = goal["object"], goal["parent"]
        return [
            f"go to {home} 1",
            f"take {obj} 1 from {home} 1",
            f"go to {parent} 1",
            f"move {obj} 1 to {parent} 1",
        ][step]

    records, prompts = _play(mini_games, convention)
    assert all(r.info["won"] and r.info["step"] == 4 for r in records)
    first = prompts[0][0]
    assert first[0]["content"].startswith("You act in a small text household")
    user = first[1]["content"]
    assert user.startswith("Task: ") and "Actions: go to " in user
    assert "look" not in user and "inventory" not in user and "Welcome" not in user
    second = prompts[1][0][1]["content"]
    assert "Step 1: go to " in second and "You arrive at" in second


def test_the_expert_searches_in_seeded_random_order_or_goes_home_when_told():
    from sdar_core.envs.alfworld import ExpertAgent

    receptacles = [f"go to {k.lower()} 1" for k in sorted({*HOMES.values(), *TARGETS})]
    admissible = [*receptacles, "inventory", "look"]
    goal = {"object": "book", "parent": "countertop", "toggle": None}
    ordered = {ExpertAgent("pick_and_place_simple", dict(goal)).act("", admissible)[1]}
    assert len(ordered) == 1  # without rng: always the same first receptacle
    firsts = {
        ExpertAgent("pick_and_place_simple", dict(goal), rng=np.random.default_rng(s)).act(
            "", admissible
        )[1]
        for s in range(40)
    }
    assert len(firsts) >= 5  # spread over the receptacles that can hold a book
    told = ExpertAgent("pick_and_place_simple", dict(goal), homes={"book": "shelf"})
    thought, command = told.act("", admissible)
    assert command == "go to shelf 1" and "shelf" in thought


def test_warm_start_puts_skills_in_the_asked_share_of_episodes(mini_games, mini_index):
    from sdar_core.skills import load_index
    from sdar_core.train import SFTConfig
    from sdar_core.train.sft import expert_transcripts

    index = load_index(mini_index)
    base = {"max_steps": 12, "history_length": 1, "explore": "random", "include_general": False}
    none = expert_transcripts(mini_games, SFTConfig(**base))
    every = expert_transcripts(
        mini_games, SFTConfig(**base, skills_fraction=1.0), skills_index=index
    )
    assert none and every
    assert not any("# Skills" in m[0]["content"] for m, _ in none)
    assert all("# Skills" in m[0]["content"] for m, _ in every)
    # with the skills, the expert goes to the home first: a four-step episode per game
    firsts = [(m, t) for m, t in every if "Now:" in m[1]["content"]]
    assert len(every) == 4 * len(firsts)
    for messages, text in firsts:
        task = messages[1]["content"].splitlines()[0]
        obj = next(o for o in HOMES if f" {o.lower()} " in f"{task} ")
        assert f"<action>go to {HOMES[obj].lower()} 1</action>" in text
        assert f"kept on the {HOMES[obj].lower()}" in messages[0]["content"]


def test_skills_fraction_without_an_index_is_refused(mini_games):
    from sdar_core.errors import SdarError
    from sdar_core.train import SFTConfig
    from sdar_core.train.sft import expert_transcripts

    with pytest.raises(SdarError, match="skills_fraction=0.5 needs the skill index"):
        expert_transcripts(mini_games, SFTConfig(skills_fraction=0.5))


def test_retrieval_finds_the_object_skill_for_each_task(mini_index):
    from sdar_core.skills import load_index

    index = load_index(mini_index)
    for obj in HOMES:
        for target in TARGETS:
            query = f"put some {obj.lower()} on {target.lower()}"
            found = index.retrieve(query, k=1, include_general=False)
            assert [r.name for r in found] == [f"miniature-{obj.lower()}"], query


def test_run_config_defaults_to_the_miniature_and_explicit_fields_win():
    from sdar_core.run import RunConfig

    mini = RunConfig()
    assert mini.world == "miniature" and mini.warm_start and mini.n_train_games == 64
    assert mini.index.library == "miniature" and mini.sft.skills_fraction == 0.5
    assert mini.rollout.max_steps == 7 and mini.eval.max_steps == 7
    assert mini.teacher.include_general is False
    given = RunConfig(rollout={"n_tasks": 2, "max_steps": 9}, warm_start=False)
    assert given.rollout.n_tasks == 2 and given.rollout.max_steps == 9
    assert given.rollout.group_size == 8 and not given.warm_start
    classic = RunConfig(world="alfworld")
    assert classic.index.library is None and not classic.warm_start
    assert classic.n_train_games == 12 and classic.rollout.max_steps == 6


@pytest.mark.slow
def test_the_miniature_pipeline_warm_starts_with_skills_and_reports_paired_learning(
    tmp_path, tiny_model_dir
):
    """The embedded default's graph, at the smallest sizes: base evaluation, warm start with
    the skill index, start and final evaluations on the same episodes, the learning lines."""
    import shutil

    from pipelines.local import run_local
    from sdar_core.run import RunConfig
    from sdar_core.run.report import learning_line
    from sdar_core.tracking.store import client

    out = tmp_path / "run"
    shutil.copytree(tiny_model_dir, out / "model")
    config = RunConfig(
        out_dir=out,
        tiny_model={"hidden_size": 128, "intermediate_size": 256},  # the copied test model
        rounds=1,
        n_train_games=2,
        n_valid_games=1,
        sft={"epochs": 1, "mini_batch_size": 64, "skills_fraction": 1.0},
        rollout={"n_tasks": 1, "group_size": 2, "max_steps": 2, "show_progress": False},
        eval={"max_steps": 2, "k": 1, "show_progress": False},
    )
    result = run_local(config)
    mlflow_client = client(result.tracking_uri)
    names = {a.path for a in mlflow_client.list_artifacts(result.run_id, "eval")}
    assert {"eval/base.json", "eval/start.json", "eval/final.json"} <= names
    metrics = mlflow_client.get_run(result.run_id).data.metrics
    assert metrics["sft/n_samples"] > 0
    assert metrics["teacher/teacher_mean_skill_tokens"] > 0
    assert "teacher/teacher_gap_lost_mean" in metrics or "teacher/teacher_gap_won_mean" in metrics
    for summary, since in ((result.learning_since_base, "base"), (result.learning, "start")):
        assert summary["since"] == since and summary["episodes"] == 1.0
        assert summary["low"] <= summary["difference"] <= summary["high"]
        assert "held-out success" in learning_line(summary)


def test_the_light_model_shape_agrees_with_the_tokenizer():
    from sdar_core.models import shape, tokenizer

    assert shape.MIN_VOCAB_SIZE == tokenizer.MIN_VOCAB_SIZE


def test_a_fixed_kind_changes_only_the_object_and_unknown_kinds_are_refused():
    for seed in range(12):
        free = sample_miniature_game(np.random.default_rng(seed))
        fixed = sample_miniature_game(np.random.default_rng(seed), "Pen")
        assert fixed.object_target == "Pen" and fixed.things[0].receptacle.kind == HOMES["Pen"]
        assert fixed.receptacles == free.receptacles and fixed.layout == free.layout
        assert fixed.parent_target == free.parent_target
    with pytest.raises(ValueError, match="'Spoon' is not a miniature object kind"):
        sample_miniature_game(np.random.default_rng(0), "Spoon")


def _kinds(games: Path, split: str) -> list[str]:
    manifest = json.loads((games / "manifest.json").read_text())
    return [task_id.split("-")[1] for task_id in manifest["games"][split]]


def test_balanced_kinds_give_every_kind_its_turn_in_each_split(tmp_path):
    from sdar_core.envs.alfworld import generate_games

    args = dict(n_train=9, n_valid_seen=3, n_valid_unseen=0, seed=3, world="miniature")
    generate_games(tmp_path / "a", balanced_kinds=True, **args)
    generate_games(tmp_path / "b", balanced_kinds=True, **args)
    kinds = sorted(HOMES)
    assert _kinds(tmp_path / "a", "train") == [*kinds, kinds[0]]
    assert _kinds(tmp_path / "a", "valid_seen") == kinds[:3]
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["balanced_kinds"] is True
    assert manifest["games"] == json.loads((tmp_path / "b" / "manifest.json").read_text())["games"]
    for game_file in (tmp_path / "a").glob("*/*/*/game.tw-pddl"):
        assert json.loads(game_file.read_text())["walkthrough"][-1].startswith("move ")


def test_balanced_kinds_outside_the_miniature_are_refused(tmp_path):
    from sdar_core.envs.alfworld import generate_games
    from sdar_core.errors import ConfigError
    from sdar_core.run import RunConfig

    with pytest.raises(ConfigError, match="balanced_kinds is a setting of world 'miniature'"):
        generate_games(tmp_path / "g", n_train=1, n_valid_seen=0, n_valid_unseen=0,
                       balanced_kinds=True)  # fmt: skip
    assert not (tmp_path / "g").exists()
    with pytest.raises(ValueError, match="world='miniature2'"):  # pydantic wraps ConfigError
        RunConfig(world="miniature2", n_warmup_games=8, balanced_kinds=True)
    with pytest.raises(ValueError, match="data="):
        RunConfig(balanced_kinds=True, data=tmp_path)
    assert RunConfig(balanced_kinds=True).balanced_kinds


def test_a_run_regenerates_its_games_when_balanced_kinds_changes(tmp_path):
    from sdar_core.run import RunConfig
    from sdar_core.run.prepare import _games

    config = RunConfig(out_dir=tmp_path, n_train_games=8, n_valid_games=1, rollout={"n_tasks": 2})
    games = _games(tmp_path, config)
    assert "balanced_kinds" not in json.loads((games / "manifest.json").read_text())
    balanced = _games(tmp_path, config.model_copy(update={"balanced_kinds": True}))
    assert balanced == games and _kinds(games, "train") == sorted(HOMES)
    assert _games(tmp_path, config.model_copy(update={"balanced_kinds": True})) == games
    assert "balanced_kinds" not in json.loads(
        (_games(tmp_path, config) / "manifest.json").read_text()
    )


def test_cli_gen_games_writes_balanced_miniature_games(tmp_path):
    from typer.testing import CliRunner

    from sdar_core.cli import app

    args = ["gen-games", str(tmp_path / "g"), "--n-train", "2", "--n-valid-seen", "0"]
    args += ["--n-valid-unseen", "0", "--world", "miniature", "--balanced-kinds"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert _kinds(tmp_path / "g", "train") == sorted(HOMES)[:2]
