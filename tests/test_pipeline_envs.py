"""WebShop and Search-QA through the pipeline like ALFWorld: the embedded run's per-env splits and
shipped data, the stage functions (rollouts -> teacher -> update -> evaluation) on the tiny model,
the expert's upper bound through the evaluation stage, and the registered metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sdar_core.evaluation import EvalConfig, evaluate
from sdar_core.evaluation.metrics import EVAL_METRICS
from sdar_core.run import RunConfig, stage_config_json
from sdar_core.run.config import ENV_DATA
from sdar_core.run.prepare import _games
from sdar_core.run.stages import (
    Tracking,
    evaluate_stage,
    index_stage,
    rollout_stage,
    start_tracking_stage,
    teacher_stage,
    update_stage,
)

ENVS = ("webshop", "search")
TINY = {
    "n_train_games": 2,
    "n_valid_games": 2,
    "rollout": {"n_tasks": 2, "group_size": 2, "max_steps": 2, "max_new_tokens": 8},
    "update": {"lr": 1e-4, "mini_batch_size": 4},
    "eval": {"max_steps": 2, "max_new_tokens": 8},
}


@pytest.fixture(scope="module")
def tracking(tmp_path_factory) -> Tracking:
    from sdar_core.tracking.store import sqlite_uri

    uri = sqlite_uri(tmp_path_factory.mktemp("mlflow") / "mlflow.db")
    inputs = {"model_uri": "model", "data_uri": "data"}
    params = {"algorithm": "sdar", "env": "alfworld"}
    run_id = start_tracking_stage(uri, "envs", "envs", params, inputs=inputs, profile="local")
    return Tracking(uri, run_id)


@pytest.mark.parametrize("env", ENVS)
def test_run_config_plays_the_env_splits_on_shipped_data(env, tmp_path):
    config = RunConfig(env=env, out_dir=tmp_path, n_valid_games=3)
    assert (config.rollout.env, config.sft.env, config.eval.env) == (env, env, env)
    assert (config.rollout.split, config.sft.split, config.eval.split) == ("train", "train", "test")
    assert config.eval.n_tasks == 3
    assert config.with_seed(5).eval == config.eval
    # a stage's own split is kept; a stage naming another env is refused with the fix
    assert RunConfig(env=env, eval={"split": "train"}).eval.split == "train"
    with pytest.raises(ValueError, match="drop rollout.env"):
        RunConfig(env=env, rollout={"env": "alfworld"})
    assert _games(tmp_path, config) == ENV_DATA[env].shipped_dir()
    assert not (tmp_path / "games").exists()  # shipped data is used in place, never copied


def test_alfworld_stages_keep_their_splits_and_unknown_envs_are_refused():
    config = RunConfig()
    assert (config.rollout.split, config.eval.split, config.eval.n_tasks) == (
        "train",
        "valid_seen",
        None,
    )
    with pytest.raises(ValueError, match="choose one of"):
        RunConfig(env="nethack")


@pytest.mark.parametrize("env", ENVS)
def test_stages_rollout_teacher_update_evaluate(env, tiny_model_dir, tracking, tmp_path):
    config = RunConfig(env=env, out_dir=tmp_path, **TINY)
    params = stage_config_json(config)
    games = str(ENV_DATA[env].shipped_dir())
    model, index = str(tiny_model_dir), str(tmp_path / "index")
    assert index_stage(env, index, params["index_config"], tracking)["index/n_skills"] >= 1
    common = {"algorithm": "sdar", "round": 0, "tracking": tracking}
    rollout = rollout_stage(
        model, games, index, str(tmp_path / "traj"), params["rollout_config"], **common
    )
    assert rollout  # logged metrics
    teacher = teacher_stage(
        model, str(tmp_path / "traj"), index, str(tmp_path / "scored"), params["teacher_config"],
        **common,
    )  # fmt: skip
    assert teacher
    update = update_stage(
        model, model, str(tmp_path / "scored"), str(tmp_path / "ckpt"), params["update_config"],
        num_gpus=1, total_rounds=1, **common,
    )  # fmt: skip
    assert update["update/steps"] >= 1
    out = tmp_path / "eval.json"
    metrics = evaluate_stage(
        str(tmp_path / "ckpt"), games, str(out), params["eval_config"],
        algorithm="sdar", label="start", round=1, tracking=tracking,
    )  # fmt: skip
    results = json.loads(out.read_text())
    assert len(results["episodes"]) == 2
    assert {e["task_id"] for e in results["episodes"]} <= set(_tasks(env, "test"))
    key = "score" if env == "webshop" else "em/avg"
    assert 0.0 <= results["metrics"][key] <= 100.0
    assert metrics[f"eval/{key}"] == results["metrics"][key]  # logged to MLflow


def _tasks(env: str, split: str) -> tuple[str, ...]:
    from sdar_core.envs import make

    games = ENV_DATA[env].shipped_dir()
    handle = make(env, data_dir=Path(games), split=split)
    try:
        return handle.task_ids
    finally:
        handle.close()


@pytest.mark.parametrize("env", ENVS)
def test_expert_through_the_evaluation_stage_is_the_upper_bound(env, tracking, tmp_path):
    config = RunConfig(env=env, out_dir=tmp_path, n_valid_games=6)
    eval_json = config.eval.model_copy(update={"policy": "expert", "max_steps": 15})
    out = tmp_path / "expert.json"
    evaluate_stage(
        str(tmp_path), str(ENV_DATA[env].shipped_dir()), str(out), eval_json.model_dump_json(),
        algorithm="sdar", label="start", round=0, tracking=tracking,
    )  # fmt: skip
    metrics = json.loads(out.read_text())["metrics"]
    assert metrics["success/all"] == 1.0 and metrics["episodes"] == 6.0
    if env == "webshop":
        assert metrics["score"] == metrics["accuracy"] == 100.0
        categories = {e["task_type"] for e in json.loads(out.read_text())["episodes"]}
        assert all(metrics[f"success/{c}"] == 1.0 for c in categories)
    else:
        sources = [k for k in metrics if k.startswith("em/") and k not in ("em/avg", "em/all")]
        assert sources and all(metrics[k] == 100.0 for k in sources)
        assert metrics["em/avg"] == metrics["em/all"] == 100.0


def test_webshop_score_is_the_mean_reward_and_search_em_averages_sources():
    webshop = EVAL_METRICS.get("webshop")
    episodes = [
        _episode("beauty", won=True, webshop_reward=1.0),
        _episode("beauty", won=False, webshop_reward=0.5),
        _episode("food", won=False, webshop_reward=None),  # never bought
        _episode("food", won=False, webshop_reward=0.25),
    ]
    metrics = webshop(episodes, 1)
    assert metrics["score"] == pytest.approx(100 * 1.75 / 4, rel=1e-12)
    assert metrics["accuracy"] == 25.0
    assert (metrics["success/beauty"], metrics["success/food"]) == (0.5, 0.0)
    search = EVAL_METRICS.get("search")
    episodes = [_episode("nq", won=True), _episode("nq", won=False), _episode("hotpotqa", won=True)]
    metrics = search(episodes, 1)
    assert (metrics["em/nq"], metrics["em/hotpotqa"]) == (50.0, 100.0)
    assert metrics["em/avg"] == 75.0  # unweighted over sources, not over questions
    assert metrics["em/all"] == pytest.approx(200 / 3, rel=1e-12)


def _episode(task_type: str, *, won: bool, webshop_reward: float | None = None) -> dict:
    return {
        "task_type": task_type,
        "run": 0,
        "won": won,
        "steps": 2,
        "invalid_actions": 0,
        "webshop_reward": webshop_reward,
    }


def test_random_baseline_is_chosen_by_env(tmp_path):
    games = ENV_DATA["webshop"].shipped_dir()
    config = EvalConfig(
        env="webshop", split="test", n_tasks=3, policy="random", max_steps=3, show_progress=False
    )
    a = evaluate(None, games, tmp_path / "a.json", config)
    b = evaluate(None, games, tmp_path / "b.json", config)
    assert a["episodes"] == b["episodes"]
    assert any(e["actions"][0].startswith("search[") for e in a["episodes"])  # WebShop actions
    search = EvalConfig(
        env="search", split="test", n_tasks=7, policy="random", k=2, show_progress=False
    )
    runs = [
        evaluate(None, ENV_DATA["search"].shipped_dir(), tmp_path / f"s{i}.json", search)
        for i in range(2)
    ]
    assert runs[0]["episodes"] == runs[1]["episodes"]  # seeded, not random between runs
    actions = [a for e in runs[0]["episodes"] for a in e["actions"]]
    assert any(a.startswith("search[") for a in actions)
    assert any(a.startswith("answer[") for a in actions)
    assert runs[0]["metrics"]["invalid_action_rate"] == 0.0  # well-formed, just uninformed
    assert runs[0]["metrics"]["em/all"] < 0.5
