"""The evaluation memo (sdar_core/evaluation/memo.py): a hit gives the results that computing
gives, with this call's paths; any change to the checkpoint, the games, the config or the thread
count misses; without the variable nothing is stored or reused."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import sdar_core.evaluation.memo as memo
from sdar_core.evaluation import EvalConfig, evaluate

FAST = dict(split="train", max_steps=3, max_new_tokens=12, show_progress=False, decoding="greedy")


@pytest.fixture
def counted(monkeypatch):
    """memo.evaluate, counting the evaluations that really ran."""
    calls = []

    def counting(*args, **kwargs):
        calls.append(args[0])
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(memo, "evaluate", counting)
    return calls


def test_hit_equals_computed_results_with_this_calls_paths(
    tiny_model_dir, alfworld_games_dir, tmp_path, monkeypatch, counted
):
    monkeypatch.setenv(memo.MEMO_ENV, str(tmp_path / "memo"))
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, copy)
    config = EvalConfig(**FAST)
    first = memo.evaluate_memoized(tiny_model_dir, alfworld_games_dir, tmp_path / "a.json", config)
    second = memo.evaluate_memoized(copy, alfworld_games_dir, tmp_path / "b.json", config)
    assert counted == [tiny_model_dir]  # the copy has the same files: a hit
    fresh = evaluate(copy, alfworld_games_dir, tmp_path / "c.json", config)
    assert second == fresh
    assert json.loads((tmp_path / "b.json").read_text()) == json.loads(json.dumps(fresh))
    assert first["model_dir"] == str(tiny_model_dir) and second["model_dir"] == str(copy)
    (stored,) = (tmp_path / "memo").iterdir()
    assert json.loads(stored.read_text())["inputs"] == memo.memo_inputs(config)


def test_every_input_is_in_the_key(tiny_model_dir, alfworld_games_dir, tmp_path, monkeypatch):
    config = EvalConfig(**FAST)

    def key_of(model, games, index, config):
        return memo.memo_key(model, games, index, memo.memo_inputs(config))

    key = key_of(tiny_model_dir, alfworld_games_dir, None, config)
    assert key == key_of(tiny_model_dir, alfworld_games_dir, None, config)
    assert key == key_of(
        tiny_model_dir, alfworld_games_dir, None, config.model_copy(update={"workers": 1})
    )  # the result does not depend on workers
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    (model / "generation_config.json").write_text(
        (model / "generation_config.json").read_text() + " "
    )
    games = tmp_path / "games"
    shutil.copytree(alfworld_games_dir, games)
    (games / "extra.txt").write_text("x")
    changed = [
        key_of(model, alfworld_games_dir, None, config),
        key_of(tiny_model_dir, games, None, config),
        key_of(tiny_model_dir, alfworld_games_dir, games, config),
        key_of(
            tiny_model_dir, alfworld_games_dir, None, config.model_copy(update={"max_steps": 4})
        ),
    ]
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(threads + 1)
        changed.append(key_of(tiny_model_dir, alfworld_games_dir, None, config))
    finally:
        torch.set_num_threads(threads)
    assert len({key, *changed}) == len(changed) + 1


def test_off_without_the_variable_or_for_scripted_policies(
    tiny_model_dir, alfworld_games_dir, tmp_path, monkeypatch, counted
):
    monkeypatch.delenv(memo.MEMO_ENV, raising=False)
    config = EvalConfig(**FAST)
    for name in ("a", "b"):
        out = tmp_path / f"{name}.json"
        memo.evaluate_memoized(tiny_model_dir, alfworld_games_dir, out, config)
    monkeypatch.setenv(memo.MEMO_ENV, str(tmp_path / "memo"))
    expert = EvalConfig(policy="expert", split="train", show_progress=False)
    for name in ("c", "d"):
        memo.evaluate_memoized(None, alfworld_games_dir, tmp_path / f"{name}.json", expert)
    assert len(counted) == 4
    assert not (tmp_path / "memo").exists()
