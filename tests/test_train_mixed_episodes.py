"""An agent that acts: episodes mixing valid and invalid steps go through rollout → teacher →
update in both sample layouts (the per-step layout used to raise in `build_rl_samples`), and the
penalty lands on the invalid step only, as the authors assign it.

The policy is the tiny model behind a scripted backend: on alternating turns it writes an
admissible ALFWorld command ("look") or an invalid one, and every response's log-probs are the
tiny model's own (one forward pass), so the update trains on real, on-policy numbers.
"""

from __future__ import annotations

import math

import pytest
import torch

from sdar_core.algos import get_algorithm, token_logprobs
from sdar_core.models import load_model, load_tokenizer
from sdar_core.rollout import RolloutConfig, generate_rollouts, read_trajectories
from sdar_core.rollout.backends.base import Generation, register_backend
from sdar_core.skills import build_index, bundled_skills_dir
from sdar_core.teacher import TeacherConfig, score_teacher
from sdar_core.train import UpdateConfig, build_rl_samples, sdar_update

VALID = "<think>I look around first.</think><action>look</action>"
INVALID = "<think>I try something.</think><action>fly to the moon</action>"


class ScriptedBackend:
    """Turn t, slot i: VALID when (t + i) is even, else INVALID; log-probs from the model."""

    def __init__(self, model_dir, settings):
        self.settings = settings
        self.model = load_model(model_dir, dtype="float32").eval()
        self.tokenizer = load_tokenizer(model_dir)
        self.turn = 0

    def generate(self, prompts, *, seeds):
        out = []
        for slot, prompt in enumerate(prompts):
            text = VALID if (self.turn + slot) % 2 == 0 else INVALID
            ids = self.tokenizer.encode(text, add_special_tokens=False)
            ids.append(self.tokenizer.eos_token_id)
            out.append(Generation(tuple(ids), tuple(self._logprobs(prompt, ids)), "stop"))
        self.turn += 1
        return out

    @torch.no_grad()
    def _logprobs(self, prompt, response):
        ids = torch.tensor([list(prompt) + list(response)])
        hidden = self.model.model(input_ids=ids).last_hidden_state[0]
        start = len(prompt)
        weight = self.model.get_output_embeddings().weight
        temperature = self.settings.temperature
        return token_logprobs(
            hidden[start - 1 : -1], weight, ids[0, start:], temperature=temperature
        ).tolist()

    def close(self):
        pass


@register_backend("test_scripted_mixed")
def _scripted(model_dir, *, settings, **_options):
    return ScriptedBackend(model_dir, settings)


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    return build_index(
        bundled_skills_dir("alfworld"), tmp_path_factory.mktemp("idx") / "index", dense=False
    )


@pytest.mark.parametrize(
    ("layout", "mode"), [("per_step", "window"), ("whole_trajectory", "full_chat")]
)
def test_mixed_episodes_train_in_both_layouts(
    tiny_model_dir, alfworld_games_dir, index_dir, tmp_path, layout, mode
):
    config = RolloutConfig(
        n_tasks=2, group_size=2, max_steps=3, max_new_tokens=32, show_progress=False,
        backend="test_scripted_mixed", layout=layout, prompt_mode=mode,
    )  # fmt: skip
    generate_rollouts(tiny_model_dir, alfworld_games_dir, tmp_path / "traj", config)
    rows = read_trajectories(tmp_path / "traj")
    if layout == "per_step":  # every episode mixes a valid and an invalid step
        by_episode = {}
        for g, m, bad in zip(rows["group_id"], rows["member"], rows["invalid_action"], strict=True):
            by_episode.setdefault((g, m), set()).add(bad)
        assert all(flags == {True, False} for flags in by_episode.values())
    else:
        assert set(rows["n_invalid_actions"]) - {0, 3}  # neither all valid nor all invalid
    scored = tmp_path / "scored"
    score_teacher(
        tiny_model_dir, tmp_path / "traj", index_dir, scored, TeacherConfig(show_progress=False)
    )
    scored_rows = read_trajectories(scored, require_teacher=True)
    samples, adv = build_rl_samples(scored_rows, get_algorithm("sdar"))
    if layout == "per_step":  # valid steps score 0, invalid -0.1: the advantages differ
        valid = [
            s.columns["advantages"][0]
            for s, b in zip(samples, rows["invalid_action"], strict=True)
            if not b
        ]
        invalid = [
            s.columns["advantages"][0]
            for s, b in zip(samples, rows["invalid_action"], strict=True)
            if b
        ]
        assert min(valid) > 0 > max(invalid)
    metrics = sdar_update(
        tiny_model_dir, scored, tmp_path / "new", UpdateConfig(algorithm="sdar", lr=1e-3)
    )
    assert metrics["skipped_steps"] == 0 and math.isfinite(metrics["loss"])
    assert metrics["advantages/abs_mean"] > 0 and math.isfinite(metrics["entropy"])
    assert math.isfinite(metrics["teacher_student_gap_std"])
    assert metrics["advantages/flat_group_ratio"] == 0.0  # the penalty ranks the lost episodes
    assert metrics["advantages/outcome_flat_group_ratio"] == 1.0  # but no group has a win
    # every episode is lost (reward 0): without the penalty every group is flat, no policy gradient
    unpenalised = sdar_update(
        tiny_model_dir, scored, tmp_path / "unpenalised",
        UpdateConfig(algorithm="sdar", lr=1e-3, invalid_action_penalty=0.0),
    )  # fmt: skip
    assert unpenalised["advantages/flat_group_ratio"] == 1.0
    assert unpenalised["advantages/abs_mean"] == 0.0


def test_invalid_action_penalty_must_not_be_negative():
    with pytest.raises(ValueError, match="invalid_action_penalty must be >= 0, got -0.1"):
        UpdateConfig(invalid_action_penalty=-0.1)
