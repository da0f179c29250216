"""The stratified validation subset and `sdar eval --skills-index`.

`task_type_of` says, before reset, the task type each env reports after reset (and refuses unknown
ids as reset does); `validation_tasks` takes n tasks round-robin across task types (checked
against a hand-written order on a fake env, and for its properties on the shipped WebShop and
Search-QA data and generated ALFWorld games); the `sdar eval` command puts the skills of an index
into the model's prompt, refuses skills without an index, and still runs the scripted expert.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sdar_core.cli import app
from sdar_core.envs import BatchEnv, EpisodeHistory, EpisodeStart, StepOutcome, make
from sdar_core.errors import ConfigError
from sdar_core.evaluation import validation_tasks
from sdar_core.run.config import ENV_DATA
from sdar_core.skills import build_index, bundled_skills_dir

SHIPPED = ("webshop", "search")


class TypedEnv(BatchEnv):
    """Tasks "<type>-<n>" of three types with 3, 1 and 2 tasks; no engine."""

    def __init__(self) -> None:
        super().__init__(max_steps=1, seed=0)

    @property
    def task_ids(self) -> tuple[str, ...]:
        return ("x-1", "x-2", "x-3", "y-1", "z-1", "z-2")

    def _task_type(self, task_id: str) -> str:
        return task_id.split("-")[0]

    def _start(self, slot: int, task_id: str, seed: int) -> EpisodeStart:
        return EpisodeStart("start", self._task_type(task_id), task_id)

    def _advance(self, slot: int, text: str) -> StepOutcome:
        return StepOutcome("", text, 0.0, False, False)

    def _prompt(self, history: EpisodeHistory, info: dict[str, Any]) -> list[dict[str, str]]:
        return []


def shipped(env: str, split: str = "test") -> BatchEnv:
    return make(env, data_dir=Path(ENV_DATA[env].shipped_dir()), split=split)


def test_round_robin_order_on_a_hand_written_example():
    env = TypedEnv()
    # types sorted (x, y, z); first of each, then second of each that has one, then third
    assert validation_tasks(env, 4) == ["x-1", "y-1", "z-1", "x-2"]
    assert validation_tasks(env, 6) == ["x-1", "y-1", "z-1", "x-2", "z-2", "x-3"]
    assert validation_tasks(env, 50) == validation_tasks(env, 6)
    assert validation_tasks(env, None) == list(env.task_ids)


@pytest.mark.parametrize("env_name", SHIPPED)
def test_task_type_of_is_what_reset_reports(env_name):
    with shipped(env_name) as env:
        sample = list(env.task_ids[::5])
        records = env.reset(task_ids=sample)
        assert len({r.info["task_type"] for r in records}) >= 3  # the sample spans types
        for task, record in zip(sample, records, strict=True):
            assert not record.info["error"]
            assert env.task_type_of(task) == record.info["task_type"]
        with pytest.raises(ConfigError) as from_type:
            env.task_type_of("no-such-task")
        with pytest.raises(ConfigError) as from_reset:
            env.reset(task_ids=["no-such-task"])
        assert str(from_type.value) == str(from_reset.value)


def test_alfworld_task_type_of_is_what_reset_reports(alfworld_games_dir):
    with make("alfworld", data_dir=alfworld_games_dir, split=None) as env:
        tasks = list(env.task_ids)
        records = env.reset(task_ids=tasks)
        assert [env.task_type_of(t) for t in tasks] == [r.info["task_type"] for r in records]
        assert all(not r.info["error"] for r in records)
        with pytest.raises(ConfigError, match="unknown task ids"):
            env.task_type_of("no-such-game")


def check_strata(env: BatchEnv) -> None:
    """The properties of validation_tasks for every n, using the types reset reports."""
    every = validation_tasks(env, None)
    assert every == sorted(env.task_ids)
    types = {r.info["task_id"]: r.info["task_type"] for r in env.reset(task_ids=every)}
    available = Counter(types.values())
    previous: list[str] = []
    for n in range(1, len(every) + 2):
        chosen = validation_tasks(env, n)
        assert len(chosen) == len(set(chosen)) == min(n, len(every))
        assert chosen[: len(previous)] == previous  # growing n only adds tasks
        counts = Counter(types[t] for t in chosen)
        assert len(counts) == min(n, len(available))
        for name, count in counts.items():
            if count < available[name]:  # a type with tasks left trails no other by more than 1
                assert max(counts.values()) <= count + 1
        previous = chosen
    assert sorted(previous) == every


@pytest.mark.parametrize("env_name", SHIPPED)
def test_validation_tasks_are_stratified_and_repeatable(env_name):
    with shipped(env_name) as env:
        check_strata(env)
        first = [validation_tasks(env, n) for n in (1, 5, 12)]
    with shipped(env_name) as fresh:
        assert [validation_tasks(fresh, n) for n in (1, 5, 12)] == first


def test_alfworld_validation_tasks_are_stratified(alfworld_games_dir):
    with make("alfworld", data_dir=alfworld_games_dir, split=None) as env:
        check_strata(env)


def test_twelve_search_questions_cover_all_seven_sources():
    with shipped("search") as env:
        records = env.reset(task_ids=validation_tasks(env, 12))
        sources = Counter(r.info["data_source"] for r in records)
        all_sources = {r.info["data_source"] for r in env.reset(task_ids=list(env.task_ids))}
    assert len(all_sources) == 7 and set(sources) == all_sources
    assert max(sources.values()) - min(sources.values()) <= 1


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("skills") / "index"
    return build_index(bundled_skills_dir("alfworld"), out, dense=False)


FAST = ["--split", "train", "--max-steps", "2", "--max-new-tokens", "8", "--batch-size", "2"]


def sdar_eval(model: Any, data: Any, out: Any, *args: Any) -> Any:
    command = ["eval", out, "--model", model, "--data", data, *args]
    return CliRunner().invoke(app, [str(a) for a in command])


def test_eval_command_puts_the_index_skills_in_the_prompt(
    tiny_model_dir, alfworld_games_dir, index_dir, tmp_path
):
    out = tmp_path / "skills.json"
    result = sdar_eval(tiny_model_dir, alfworld_games_dir, out, *FAST, "--skills-index", index_dir)
    assert result.exit_code == 0, result.output
    results = json.loads(out.read_text())
    assert results["config"]["student_sees_skills"] is True
    assert results["skills_index_dir"] == str(index_dir)
    assert len(results["episodes"]) == 3
    assert all(e["skills"] for e in results["episodes"])
    assert "success/all" in result.output

    out = tmp_path / "plain.json"
    args = (*FAST, "--skills-index", index_dir, "--no-student-sees-skills")
    assert sdar_eval(tiny_model_dir, alfworld_games_dir, out, *args).exit_code == 0
    plain = json.loads(out.read_text())
    assert plain["config"]["student_sees_skills"] is False and plain["skills_index_dir"] is None
    assert all(e["skills"] == [] for e in plain["episodes"])


def test_eval_command_skills_without_an_index_say_how_to_fix(
    tiny_model_dir, alfworld_games_dir, tmp_path
):
    out = tmp_path / "x.json"
    result = sdar_eval(tiny_model_dir, alfworld_games_dir, out, *FAST, "--student-sees-skills")
    assert isinstance(result.exception, ConfigError)
    assert "skills_index_dir" in str(result.exception)
    assert not out.exists()


def test_eval_command_expert_ignores_the_model_and_skills(alfworld_games_dir, index_dir, tmp_path):
    out = tmp_path / "expert.json"
    args = ("--split", "train", "--policy", "expert", "--skills-index", index_dir)
    result = sdar_eval(tmp_path / "no-model", alfworld_games_dir, out, *args)
    assert result.exit_code == 0, result.output
    results = json.loads(out.read_text())
    assert results["metrics"]["success/all"] == 1.0 and len(results["episodes"]) == 3
    assert all(e["skills"] == [] for e in results["episodes"])


def test_eval_command_plays_a_stratified_webshop_subset(tmp_path):
    out = tmp_path / "webshop.json"
    games = ENV_DATA["webshop"].shipped_dir()
    args = ("--env", "webshop", "--split", "test", "--n-tasks", "5", "--policy", "expert")
    result = sdar_eval(tmp_path / "no-model", games, out, *args, "--max-steps", "15")
    assert result.exit_code == 0, result.output
    episodes = json.loads(out.read_text())["episodes"]
    assert len({e["task_type"] for e in episodes}) == len(episodes) == 5  # one per category
    assert all(e["won"] for e in episodes)


def test_eval_command_keeps_the_model_texts_unless_told_not_to(
    tiny_model_dir, alfworld_games_dir, tmp_path
):
    out = tmp_path / "texts.json"
    assert sdar_eval(tiny_model_dir, alfworld_games_dir, out, *FAST).exit_code == 0
    episodes = json.loads(out.read_text())["episodes"]
    assert all(len(e["texts"]) == e["steps"] for e in episodes)
    assert all(isinstance(t, str) for e in episodes for t in e["texts"])
    out = tmp_path / "no-texts.json"
    args = (*FAST, "--no-keep-texts")
    assert sdar_eval(tiny_model_dir, alfworld_games_dir, out, *args).exit_code == 0
    assert all(e["texts"] is None for e in json.loads(out.read_text())["episodes"])


def test_eval_command_search_plays_its_default_split_and_data(tmp_path):
    out = tmp_path / "search.json"
    args = ["eval", str(out), "--env", "search", "--policy", "expert", "--n-tasks", "3"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    results = json.loads(out.read_text())
    assert results["config"]["split"] == "test" and len(results["episodes"]) == 3
