"""The rollout-vs-training log-prob gap: with `recompute_old_logprobs` (the cluster profile's
default) the update recomputes the old log-probs with the training engine and reports how far the
rollout engine's were, over the trained response tokens only (mean |Δ|, share of tokens over
0.1 nat); without the recompute nothing is reported."""

import pytest

from sdar_core.rollout.schema import read_trajectories, write_trajectories
from sdar_core.train import UpdateConfig, sdar_update
from sdar_core.train.batch import Sample
from sdar_core.train.update import logprob_gap


def test_the_gap_counts_trained_tokens_only():
    samples = [
        Sample([1], [2, 3, 4], {"old_logprobs": [-1.0, 0.0, -2.0], "response_mask": [1, 0, 1]}),
        Sample([1], [5, 6], {"old_logprobs": [-0.5, -0.25], "response_mask": [1, 1]}),
    ]
    recomputed = [[-1.05, -9.0, -2.5], [-0.5, -0.125]]
    gap = logprob_gap(samples, recomputed)
    # |Δ| on trained tokens: 0.05, 0.5, 0.0, 0.125 (the environment token's 9.0 is left out)
    assert gap["logprob_gap/mean_abs"] == pytest.approx((0.05 + 0.5 + 0.0 + 0.125) / 4)
    assert gap["logprob_gap/share_over_0.1"] == 0.5
    assert (
        logprob_gap([Sample([1], [2], {"old_logprobs": [0.0], "response_mask": [0]})], [[1]]) == {}
    )


def _shifted(scored, dst, shift: float):
    rows = read_trajectories(scored, require_teacher=True).to_dict()
    rows["old_logprobs"] = [[v - shift for v in row] for row in rows["old_logprobs"]]
    meta = {"layout": "per_step", "round": 0, "config": {"temperature": 1.0}}
    return write_trajectories(dst, rows, kind="scored_trajectories", metadata=meta, summary={})


def test_the_update_reports_the_gap_it_recomputed(
    make_scored_trajectories, tiny_model_dir, tmp_path
):
    scored = make_scored_trajectories(tmp_path / "scored")
    # the rollout's log-probs came from the same weights: shifted by 0.3 nat, the gap is 0.3
    shifted = _shifted(scored, tmp_path / "shifted", 0.3)
    config = UpdateConfig(lr=1e-3, recompute_old_logprobs=True)
    metrics = sdar_update(tiny_model_dir, shifted, tmp_path / "a", config)
    assert metrics["logprob_gap/mean_abs"] == pytest.approx(0.3, abs=1e-4)
    assert metrics["logprob_gap/share_over_0.1"] == 1.0
    same = sdar_update(tiny_model_dir, scored, tmp_path / "b", config)
    assert same["logprob_gap/mean_abs"] < 1e-4 and same["logprob_gap/share_over_0.1"] == 0.0
    plain = sdar_update(tiny_model_dir, shifted, tmp_path / "c", UpdateConfig(lr=1e-3))
    assert not any(key.startswith("logprob_gap/") for key in plain)
