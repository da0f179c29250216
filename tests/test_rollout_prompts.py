"""The full-chat continuation message: after an action it carries only what is new (the new
observation and the admissible actions), never the task or the rules again; the ALFWorld env serves
it through `chat_prompts()`, and a full-chat rollout puts exactly it between two responses. In the
"delta" form its admissible line applied to the previous list gives the current list exactly."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdar_core.envs import make
from sdar_core.envs.alfworld import RandomPolicy
from sdar_core.envs.alfworld.prompts import (
    SYSTEM_PROMPT,
    admissible_delta,
    apply_admissible_delta,
    build_continuation,
    build_messages,
    parse_admissible_line,
)
from sdar_core.envs.base import EpisodeHistory, Turn
from sdar_core.errors import ConfigError, SdarError
from sdar_core.models import load_tokenizer
from sdar_core.rollout import RolloutConfig, generate_rollouts, read_trajectories

TASK = "put a clean mug in coffeemachine"


def _history(n_turns: int) -> EpisodeHistory:
    turns = tuple(
        Turn(f"text {i}", f"action {i}", f"You see  obs\n{i + 1}.", 0.0, False)
        for i in range(n_turns)
    )
    return EpisodeHistory("t", TASK, f"Your task is to: {TASK}. obs 0", turns)


def test_continuation_holds_the_new_observation_and_actions_not_the_task():
    message = build_continuation(_history(3), ["look", "go to desk 1"])
    assert message["role"] == "user"
    text = message["content"]
    assert text == (
        "Now, at step 4, you observe: You see obs 3.\n\n"
        "Admissible actions: ['look', 'go to desk 1']"
    )
    assert TASK not in text and "obs 2" not in text and SYSTEM_PROMPT not in text


def test_continuation_is_shorter_than_the_window_prompt_by_the_repeated_parts():
    history, admissible = _history(3), ["look", "go to desk 1"]
    window = build_messages(history, admissible, history_length=2)[1]["content"]
    continuation = build_continuation(history, admissible)["content"]
    # the window repeats the task and the last 2 steps; both end with the same new state
    assert TASK in window and "[step 3] observation" in window
    assert "you observe: You see obs 3." in window and admissible[1] in window
    assert len(continuation) < len(window)


def test_continuation_needs_an_episode_that_acted():
    with pytest.raises(SdarError, match="build_messages"):
        build_continuation(_history(0), ["look"])


def test_env_chat_prompts_first_prompt_then_continuations(alfworld_games_dir):
    env = make("alfworld", data_dir=alfworld_games_dir, split="train", history_length=0, seed=0)
    try:
        task_ids = env.task_ids[:2]
        env.reset(task_ids=list(task_ids))
        first = env.chat_prompts()
        assert first == env.prompts()  # before any action: the whole first prompt
        records = env.step(["<think>x</think><action>look</action>", "no action here"])
        after = env.chat_prompts(admissible_in_continuation="full")
        for messages, record in zip(after, records, strict=True):
            assert messages is not None and len(messages) == 1
            text = messages[0]["content"]
            assert " ".join(record.observation.split()) in text
            assert str(record.info["admissible_actions"][0]) in text
            assert record.info["task_text"] not in text and "at step 2" in text
    finally:
        env.close()


@pytest.mark.parametrize(
    ("form", "head"), [("delta", "Admissible actions now: "), ("full", "Admissible actions: [")]
)
def test_full_chat_rollout_puts_only_continuations_between_responses(
    tiny_model_dir, alfworld_games_dir, tmp_path, form, head
):
    config = RolloutConfig(
        n_tasks=1,
        group_size=2,
        max_steps=3,
        max_new_tokens=8,
        prompt_mode="full_chat",
        layout="whole_trajectory",
        admissible_in_continuation=form,
        show_progress=False,
    )
    generate_rollouts(tiny_model_dir, alfworld_games_dir, tmp_path / "w", config)
    tokenizer = load_tokenizer(tiny_model_dir)
    for traj in read_trajectories(tmp_path / "w"):
        pairs = zip(traj["response_ids"], traj["response_mask"], strict=True)
        env_text = tokenizer.decode([t for t, m in pairs if not m])
        assert env_text.count("<|im_start|>user\n") == traj["n_steps"] - 1 == 2
        assert env_text.count(head) == 2  # one list per continuation, in the chosen form
        assert env_text.count("Admissible actions") == 2
        assert traj["task_text"] not in env_text and "Your task is to" not in env_text
        assert "at step 2" in env_text and "at step 3" in env_text
        first = tokenizer.decode(traj["prompt_ids"])
        assert f"Your task is to: {traj['task_text']}" in first


ACTION = st.text(alphabet="abcdefghij 0123456789", min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(
    lists=st.lists(
        st.one_of(
            st.lists(ACTION, max_size=8, unique=True).map(sorted),  # the engine's form
            st.lists(ACTION, max_size=8),  # any order, repeats: the full list must be sent
        ),
        min_size=2,
        max_size=6,
    )
)
def test_delta_applied_to_the_previous_list_gives_the_current_list(lists):
    history = _history(1)
    for previous, current in itertools.pairwise(lists):
        text = build_continuation(history, current, previous_admissible=previous)["content"]
        line = text.split("\n\n")[-1]
        assert parse_admissible_line(line, previous) == current
        is_delta = line.startswith("Admissible actions now:")
        assert is_delta == (current == sorted(set(current)))
        if is_delta:
            added, removed = admissible_delta(previous, current)
            assert apply_admissible_delta(previous, added=added, removed=removed) == current
            assert not set(added) & set(previous) and set(removed) <= set(previous)


def test_delta_line_forms():
    history = _history(1)
    line = build_continuation(history, ["a", "c"], previous_admissible=["a", "b"])["content"]
    assert line.endswith("Admissible actions now: +['c'] -['b']")
    same = build_continuation(history, ["a"], previous_admissible=["a"])["content"]
    assert same.endswith("Admissible actions now: unchanged")
    full = build_continuation(history, ["b", "a"], previous_admissible=["a"])["content"]
    assert full.endswith("Admissible actions: ['b', 'a']")  # not sorted: sent in full


def test_delta_continuations_reconstruct_the_engines_lists(alfworld_games_dir):
    env = make("alfworld", data_dir=alfworld_games_dir, split="train", history_length=0, seed=0)
    policy = RandomPolicy(seed=3)
    try:
        records = env.reset(task_ids=list(env.task_ids[:2]))
        shown = [r.info["admissible_actions"] for r in records]  # what the first prompt lists
        deltas = 0
        for _ in range(6):
            records = env.step(policy(records))
            live = env.chat_prompts(admissible_in_continuation="delta")
            assert [m is None for m in live] == [r.done for r in records]
            for slot, (messages, record) in enumerate(zip(live, records, strict=True)):
                if messages is None:
                    continue
                line = messages[0]["content"].split("\n\n")[-1]
                current = parse_admissible_line(line, shown[slot])
                assert current == record.info["admissible_actions"]
                deltas += line.startswith("Admissible actions now:")
                shown[slot] = current
        assert deltas > 0
        with pytest.raises(ConfigError, match="delta"):
            env.chat_prompts(admissible_in_continuation="diff")
    finally:
        env.close()
