"""WebShop environment on the shipped catalog: pages, episode ends, splits, expert, metrics."""

from __future__ import annotations

import pytest

from sdar_core.envs import make
from sdar_core.envs.base import StepRecord, play
from sdar_core.envs.webshop import ExpertPolicy, RandomPolicy, eval_metrics
from sdar_core.errors import ConfigError


def _act(action: str) -> str:
    return f"<think>t</think><action>{action}</action>"


@pytest.fixture(scope="module")
def env():
    return make("webshop", split="test")


def test_registered_with_disjoint_splits():
    full = make("webshop")
    train, test = make("webshop", split="train"), make("webshop", split="test")
    assert len(full.task_ids) == 250 and len(test.task_ids) == 50 and len(train.task_ids) == 200
    assert set(train.task_ids) | set(test.task_ids) == set(full.task_ids)
    assert not set(train.task_ids) & set(test.task_ids)
    assert list(full.task_ids) == sorted(full.task_ids)


def test_bad_options_fail_with_a_config_error():
    with pytest.raises(ConfigError, match="split"):
        make("webshop", split="valid")


def test_pages_clicks_and_a_purchase(env):
    task = env.task_ids[0]
    goal = env.goal(task)
    (start,) = env.reset(task_ids=[task])
    assert start.observation.startswith("WebShop [SEP] Instruction: [SEP] ")
    assert start.info["available_actions"] == ["search[<your query>]"]
    assert start.info["task_type"] == goal["category"]

    (rec,) = env.step([_act("click[buy now]")])  # nothing to click on the search page
    assert rec.info["invalid_action"] and rec.info["invalid_reason"] == "not_available"
    assert rec.observation == start.observation and not rec.done

    (rec,) = env.step([_act(f"search[{goal['query']}]")])
    assert rec.info["page"] == "results" and "Page 1 (Total results: " in rec.observation
    asins = [a[6:-1] for a in rec.info["available_actions"] if a[6:-1].startswith("b0")]
    assert 1 <= len(asins) <= 10
    if "click[next >]" in rec.info["available_actions"]:
        (rec,) = env.step([_act("click[next >]")])
        assert "click[< prev]" in rec.info["available_actions"]
        (rec,) = env.step([_act("click[< prev]")])
    (rec,) = env.step([_act(f"click[{goal['asin']}]")])  # upper case is accepted too
    assert rec.info["page"] == "item" and goal["name"] in rec.observation
    (rec,) = env.step([_act("click[features]")])
    assert rec.info["page"] == "features"
    (rec,) = env.step([_act("click[< prev]")])
    assert rec.info["page"] == "item"
    (rec,) = env.step([_act("click[buy now]")])  # no options selected: not a win
    assert rec.done and not rec.info["won"] and not rec.info["truncated"]
    assert rec.info["bought"] and rec.info["reward_breakdown"]["asin"] == goal["asin"]
    assert 0.0 < rec.info["webshop_reward"] < 1.0
    assert rec.reward == 0.0  # the authors' training reward: 10 only for a score of exactly 1
    (after,) = env.step(["anything"])  # finished episodes ignore texts
    assert after.done and after.reward == 0.0


def test_step_limit_truncates():
    env = make("webshop", split="test", max_steps=3)
    records = env.reset(task_ids=[env.task_ids[1]])
    for _ in range(3):
        records = env.step([_act("click[nothing]")])
    assert records[0].done and records[0].info["truncated"] and not records[0].info["bought"]


def test_expert_wins_every_shipped_task():
    env = make("webshop")
    records = play(env, ExpertPolicy(), task_ids=list(env.task_ids))
    assert all(r.info["won"] for r in records)
    assert all(r.info["webshop_reward"] == 1.0 for r in records)
    assert max(r.info["step"] for r in records) <= env.max_steps
    metrics = eval_metrics(records)
    assert metrics["score"] == 100.0 and metrics["accuracy"] == 100.0


def test_random_policy_is_worse_and_deterministic(env):
    first = play(env, RandomPolicy(seed=1), task_ids=list(env.task_ids))
    again = play(env, RandomPolicy(seed=1), task_ids=list(env.task_ids))
    assert [r.observation for r in first] == [r.observation for r in again]
    assert eval_metrics(first)["accuracy"] < 50.0


def test_goals_and_price_limits_depend_only_on_the_seed():
    a, b = make("webshop", seed=3), make("webshop", seed=3)
    c = make("webshop", seed=4)
    goals = lambda e: [e.goal(t)["instruction_text"] for t in e.task_ids]  # noqa: E731
    assert goals(a) == goals(b) and goals(a) != goals(c)


def test_prompt_lists_the_available_actions(env):
    env.reset(task_ids=[env.task_ids[2]])
    env.step([_act("search[shoes]")])
    (messages,) = env.prompts()
    user = messages[-1]["content"]
    assert "Available actions: ['click[back to search]'" in user
    assert "[step 1] observation: WebShop [SEP] Instruction:" in user


def _record(reward: float | None, won: bool) -> StepRecord:
    return StepRecord("", 0.0, True, {"webshop_reward": reward, "won": won})


def test_eval_metrics_hand_computed():
    records = [_record(1.0, True), _record(0.5, False), _record(None, False), _record(0.25, False)]
    # score = 100 * (1 + 0.5 + 0 + 0.25) / 4 = 43.75; accuracy = 100 * 1/4 = 25
    assert eval_metrics(records) == {"score": 43.75, "accuracy": 25.0, "n_episodes": 4.0}
    with pytest.raises(ConfigError):
        eval_metrics([])
