"""sdar_update on the tiny model: gradient-accumulation invariance (8x1 vs 1x8 for every
aggregation mode), training happens (finite loss, every parameter moves, rewarded responses gain
log-prob), SDAR adds zero loss with gate 0.5 when teacher == student, the non-finite guard, and
bad input fails with a message naming the fix."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file

from sdar_core.algos import get_algorithm
from sdar_core.errors import ArtifactError, SdarError
from sdar_core.models import TinyModelConfig, build_tiny_model
from sdar_core.rollout import FEATURES, read_trajectories, write_trajectories
from sdar_core.train import (
    PolicyHead,
    UpdateConfig,
    build_rl_samples,
    collate,
    load_policy,
    make_engine,
    rl_loss,
    sdar_update,
    train_loop,
)
from sdar_core.train.objective import RLSettings

SGD = dict(optimizer="sgd", weight_decay=0.0, max_grad_norm=None, shuffle=False)


@pytest.fixture(scope="module")
def scored(make_scored_trajectories, tmp_path_factory):
    return make_scored_trajectories(tmp_path_factory.mktemp("scored") / "t")


def _weights(path):
    return load_file(path / "model.safetensors")


def _one_step_grads(model_dir, rows, algo, micro_tokens: int) -> dict[str, torch.Tensor]:
    """The accumulated gradient of one optimizer step on the whole batch."""
    config = UpdateConfig(algorithm="sdar", lr=1.0, micro_batch_tokens=micro_tokens, **SGD)
    head = PolicyHead(
        load_policy(model_dir, config), temperature=1.0, chunk_size=None, with_entropy=True
    )
    samples, _ = build_rl_samples(rows, algo)
    for s in samples:  # the starting model is the reference: ref = old (computed by it)
        s.columns["ref_logprobs"] = list(s.columns["old_logprobs"])
    engine = make_engine(head, config, lr=1.0, total_steps=1)
    grads, step = {}, engine.step

    def recording_step():
        grads.update({n: p.grad.clone() for n, p in head.named_parameters()})
        return step()

    engine.step = recording_step
    settings = RLSettings(clip={}, iteration=1)
    train_loop(
        engine,
        samples,
        config,
        agg_mode=algo.agg_mode,
        pad_id=0,
        loss_fn=lambda lp, batch, step: rl_loss(lp, batch, algo, settings),
    )
    return grads


@pytest.mark.parametrize(
    "agg_mode",
    ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm"],
)
def test_accumulation_8x1_equals_1x8(tiny_model_dir, scored, agg_mode):
    rows = read_trajectories(scored, require_teacher=True)
    algo = get_algorithm("sdar").with_overrides(agg_mode=agg_mode)
    one_by_eight = _one_step_grads(tiny_model_dir, rows, algo, micro_tokens=10**6)
    eight_by_one = _one_step_grads(tiny_model_dir, rows, algo, micro_tokens=1)
    assert any(d.abs().max() > 1e-4 for d in one_by_eight.values())  # a real update
    for name, delta in one_by_eight.items():
        # float32 sums in another order: errors scale with the tensor's largest entry
        atol = 1e-5 * float(delta.abs().max())
        torch.testing.assert_close(eight_by_one[name], delta, rtol=1e-5, atol=atol)


def test_accumulation_invariance_end_to_end(tiny_model_dir, scored, tmp_path):
    outs = {}
    for name, tokens in (("1x8", 10**6), ("8x1", 1)):
        config = UpdateConfig(algorithm="sdar", lr=1e-2, micro_batch_tokens=tokens, **SGD)
        sdar_update(tiny_model_dir, scored, tmp_path / name, config)
        outs[name] = _weights(tmp_path / name)
    start = _weights(tiny_model_dir)
    for key, value in outs["1x8"].items():
        delta = value - start[key]
        # + the float32 rounding of the weights themselves (2 ulp of the largest weight)
        atol = 1e-5 * float(delta.abs().max()) + 2.4e-7 * float(start[key].abs().max())
        torch.testing.assert_close(outs["8x1"][key] - start[key], delta, rtol=1e-5, atol=atol)


def _mean_logprob(model_dir, rows, won: bool) -> float:
    config = UpdateConfig(algorithm="grpo")
    head = PolicyHead(load_policy(model_dir, config), temperature=1.0, chunk_size=None).eval()
    samples, _ = build_rl_samples(rows, get_algorithm("grpo"))
    chosen = [s for s, w in zip(samples, rows["won"], strict=True) if w == won]
    batch = collate(chosen, pad_id=0, device="cpu")
    with torch.no_grad():
        logprobs = head(batch)  # (B, T)
    return float((logprobs * batch.response_mask).sum() / batch.response_mask.sum())


def test_a_few_steps_train_the_policy(tiny_model_dir, scored, tmp_path):
    config = UpdateConfig(algorithm="sdar", lr=3e-3, epochs=3, mini_batch_size=4, weight_decay=0.0)
    metrics = sdar_update(tiny_model_dir, scored, tmp_path / "new", config)
    assert metrics["steps"] == 6 and metrics["skipped_steps"] == 0
    assert all(
        math.isfinite(h["loss"]) and math.isfinite(h["grad_norm"]) for h in metrics["history"]
    )
    for name in (
        "pg_loss",
        "kl_loss",
        "pg_clipfrac",
        "sdar/gate_mean",
        "sdar/gate_active_ratio",
        "teacher_gap",
        "grad_norm",
        "tokens_per_s",
    ):
        assert math.isfinite(metrics[name]), name
    before, after = _weights(tiny_model_dir), _weights(tmp_path / "new")
    unchanged = [k for k in before if torch.equal(before[k], after[k])]
    assert not unchanged
    rows = read_trajectories(scored, require_teacher=True)
    assert _mean_logprob(tmp_path / "new", rows, won=True) > _mean_logprob(
        tiny_model_dir, rows, won=True
    )
    assert _mean_logprob(tmp_path / "new", rows, won=False) < _mean_logprob(
        tiny_model_dir, rows, won=False
    )
    assert (tmp_path / "new" / "metrics.json").is_file()
    assert (tmp_path / "new" / "tokenizer.json").is_file()


def test_sdar_term_is_zero_with_gate_half_when_teacher_equals_student(tiny_model_dir, scored):
    rows = read_trajectories(scored, require_teacher=True)
    config = UpdateConfig(algorithm="sdar")
    head = PolicyHead(load_policy(tiny_model_dir, config), temperature=1.0, chunk_size=None)
    samples, _ = build_rl_samples(rows, get_algorithm("sdar"))
    batch = collate(samples, pad_id=0, device="cpu")
    logprobs = head(batch)  # (B, T)
    for name in ("teacher_logprobs", "ref_logprobs"):
        batch.columns[name] = logprobs.detach() * batch.response_mask
    settings = RLSettings(clip={}, iteration=1)
    no_bonus = {"entropy_coeff": 0.0}  # the head returns no entropy here
    sdar = get_algorithm("sdar").with_overrides(**no_bonus)
    sdar_total, sdar_metrics = rl_loss(logprobs, batch, sdar, settings)
    grpo_total, _ = rl_loss(
        logprobs, batch, get_algorithm("grpo").with_overrides(**no_bonus), settings
    )
    assert sdar_metrics["sdar/loss"] == 0.0
    assert sdar_metrics["sdar/gate_mean"] == 0.5
    assert sdar_metrics["sdar/gate_active_ratio"] == 0.0
    torch.testing.assert_close(sdar_total, grpo_total, rtol=0, atol=0)


def test_sdar_update_with_teacher_equal_to_student(
    make_scored_trajectories, tiny_model_dir, tmp_path
):
    same = make_scored_trajectories(tmp_path / "same", teacher="student")
    metrics = sdar_update(tiny_model_dir, same, tmp_path / "out", UpdateConfig(lr=1e-3))
    # The teacher column came from one unpadded forward pass, the training pass is batched:
    # they agree to float32 rounding, so the gap is ~1e-7 and the gate 0.5 to ~1e-6.
    assert abs(metrics["sdar/gate_mean"] - 0.5) < 1e-5
    assert abs(metrics["sdar/loss"]) < 1e-5
    assert abs(metrics["teacher_gap"]) < 1e-5


def _rewrite(src, dst, kind="scored_trajectories", **changes):
    rows = read_trajectories(src, require_teacher=kind == "scored_trajectories").to_dict()
    if kind == "trajectories":
        rows = {k: v for k, v in rows.items() if k in FEATURES}
    for name, fn in changes.items():
        rows[name] = fn(rows[name])
    meta = {"layout": "per_step", "round": 0, "config": {"temperature": 1.0}}
    return write_trajectories(dst, rows, kind=kind, metadata=meta, summary={})


def test_unscored_trajectories_need_score_teacher_for_sdar(tiny_model_dir, scored, tmp_path):
    plain = _rewrite(scored, tmp_path / "plain", kind="trajectories")
    with pytest.raises(ArtifactError, match="score_teacher"):
        sdar_update(tiny_model_dir, plain, tmp_path / "a", UpdateConfig(algorithm="sdar"))
    metrics = sdar_update(tiny_model_dir, plain, tmp_path / "b", UpdateConfig(algorithm="grpo"))
    assert metrics["steps"] == 1  # 256-sample mini-batches: the whole small batch in one step


def test_reference_of_another_architecture_is_refused(tiny_model_dir, scored, tmp_path):
    other = build_tiny_model(tmp_path / "other", config=TinyModelConfig(hidden_size=64))
    with pytest.raises(ArtifactError, match="another architecture.*hidden_size"):
        sdar_update(tiny_model_dir, scored, tmp_path / "o", UpdateConfig(), ref_model_dir=other)


def test_token_ids_outside_the_vocabulary_are_refused(tiny_model_dir, scored, tmp_path):
    big = _rewrite(
        scored,
        tmp_path / "big",
        response_ids=lambda r: [x + [10**6] for x in r],
        response_mask=lambda r: [x + [1] for x in r],
        old_logprobs=lambda r: [x + [0.0] for x in r],
        teacher_logprobs=lambda r: [x + [0.0] for x in r],
    )
    with pytest.raises(ArtifactError, match="another tokenizer"):
        sdar_update(tiny_model_dir, big, tmp_path / "o", UpdateConfig())


def test_empty_batch_is_refused(tiny_model_dir, scored, tmp_path):
    empty = _rewrite(scored, tmp_path / "empty")
    rows = read_trajectories(empty, require_teacher=True).select([])
    none = write_trajectories(
        tmp_path / "none",
        rows,
        kind="scored_trajectories",
        metadata={"config": {"temperature": 1.0}},
        summary={},
    )
    with pytest.raises(SdarError, match="empty batch"):
        sdar_update(tiny_model_dir, none, tmp_path / "o", UpdateConfig())
    masked = _rewrite(
        scored, tmp_path / "masked", response_mask=lambda r: [[0] * len(x) for x in r]
    )
    with pytest.raises(SdarError, match="no trained tokens"):
        sdar_update(tiny_model_dir, masked, tmp_path / "o2", UpdateConfig())


def test_non_finite_logprobs_in_the_trajectories_are_refused(tiny_model_dir, scored, tmp_path):
    for column, value in (("old_logprobs", float("-inf")), ("teacher_logprobs", float("nan"))):
        bad = _rewrite(
            scored, tmp_path / column, **{column: lambda r, v=value: [[v] + x[1:] for x in r]}
        )
        with pytest.raises(
            ArtifactError, match=f"sample 0 .*{column}=(-inf|nan) at response token 0"
        ):
            sdar_update(tiny_model_dir, bad, tmp_path / f"o-{column}", UpdateConfig())
        assert not (tmp_path / f"o-{column}").exists()


def _grpo_engine(model_dir, config, rows):
    head = PolicyHead(
        load_policy(model_dir, config), temperature=1.0, chunk_size=None, with_entropy=True
    )
    samples, _ = build_rl_samples(rows, get_algorithm("grpo"))
    for s in samples:
        s.columns["ref_logprobs"] = list(s.columns["old_logprobs"])
    return head, samples, make_engine(head, config, lr=config.lr, total_steps=1)


def test_non_finite_steps_are_skipped_then_fail(tiny_model_dir, scored):
    rows = read_trajectories(scored, require_teacher=True)
    algo = get_algorithm("grpo")

    def nan_loss(outputs, batch, step):
        loss, metrics = rl_loss(outputs, batch, algo, RLSettings(clip={}, iteration=1))
        return loss * float("nan"), metrics

    for mini, match in (
        (2, "3 optimizer steps in a row had a non-finite loss"),
        (None, "no optimizer step of this update succeeded"),
    ):
        config = UpdateConfig(
            algorithm="grpo", mini_batch_size=mini, lr=1e-3, max_nonfinite_steps=3
        )
        _, samples, engine = _grpo_engine(tiny_model_dir, config, rows)
        with pytest.raises(FloatingPointError, match=match):
            train_loop(engine, samples, config, loss_fn=nan_loss, agg_mode="token-mean", pad_id=0)


def test_a_non_finite_weight_after_a_step_fails_naming_it(tiny_model_dir, scored):
    rows = read_trajectories(scored, require_teacher=True)
    config = UpdateConfig(algorithm="grpo", mini_batch_size=None, lr=1e-3)
    head, samples, engine = _grpo_engine(tiny_model_dir, config, rows)
    algo, step = get_algorithm("grpo"), engine.optimizer.step

    def poisoned_step(*args, **kwargs):  # an optimizer that writes inf into one weight
        out = step(*args, **kwargs)
        with torch.no_grad():
            dict(head.named_parameters())["model.model.norm.weight"][0] = float("inf")
        return out

    engine.optimizer.step = poisoned_step
    with pytest.raises(
        FloatingPointError,
        match="step 0 left non-finite values in weight 'model.model.norm.weight'",
    ):
        train_loop(
            engine, samples, config, agg_mode="token-mean", pad_id=0,
            loss_fn=lambda o, b, s: rl_loss(o, b, algo, RLSettings(clip={}, iteration=1)),
        )  # fmt: skip


def test_one_non_finite_step_is_skipped_and_training_goes_on(tiny_model_dir, scored):
    rows = read_trajectories(scored, require_teacher=True)
    algo = get_algorithm("grpo")
    config = UpdateConfig(algorithm="grpo", mini_batch_size=4, lr=1e-3, shuffle=False)
    head = PolicyHead(
        load_policy(tiny_model_dir, config), temperature=1.0, chunk_size=None, with_entropy=True
    )
    samples, _ = build_rl_samples(rows, algo)
    for s in samples:
        s.columns["ref_logprobs"] = list(s.columns["old_logprobs"])
    before = {n: p.detach().clone() for n, p in head.named_parameters()}
    engine = make_engine(head, config, lr=1e-3, total_steps=2)

    def loss_fn(logprobs, batch, step):
        loss, metrics = rl_loss(logprobs, batch, algo, RLSettings(clip={}, iteration=1))
        return (loss * float("nan"), metrics) if step == 0 else (loss, metrics)

    summary = train_loop(engine, samples, config, loss_fn=loss_fn, agg_mode="token-mean", pad_id=0)
    assert summary["steps"] == 2 and summary["skipped_steps"] == 1
    assert any(not torch.equal(p, before[n]) for n, p in head.named_parameters())


def test_config_errors_name_the_fix():
    # pydantic wraps the ConfigError raised inside a validator; both are ValueErrors
    with pytest.raises(ValueError, match="valid names are"):
        UpdateConfig(algorithm="ppo2")
    with pytest.raises(ValueError, match="does not train"):
        UpdateConfig(algorithm="vanilla")
    with pytest.raises(ValueError, match="set micro_batch_tokens"):
        UpdateConfig(micro_batch_tokens=0)
    with pytest.raises(ValueError, match="mini_batch_size"):
        UpdateConfig(mini_batch_size=0)
    for field in ("lr", "weight_decay", "max_grad_norm", "min_lr_ratio"):  # never inf or NaN
        for bad in (float("inf"), float("nan")):
            with pytest.raises(ValueError, match=f"(?s){field}.*finite"):
                UpdateConfig(**{field: bad})
    with pytest.raises(ValueError, match="set total_iterations to the number of rounds"):
        UpdateConfig(lr_schedule="cosine")


@pytest.mark.parametrize("name", ["grpo", "skill_grpo", "opsd", "grpo_opsd", "skill_sd", "rlsd"])
def test_every_training_preset_runs(tiny_model_dir, scored, tmp_path, name):
    metrics = sdar_update(
        tiny_model_dir, scored, tmp_path / name, UpdateConfig(algorithm=name, lr=1e-3)
    )
    assert metrics["skipped_steps"] == 0 and math.isfinite(metrics["loss"])


def test_recomputed_old_logprobs_and_reference_dir(tiny_model_dir, scored, tmp_path):
    # Rollout log-probs off by a constant: the first step sees ratio exp(0.5) and clips, unless
    # they are recomputed from the starting policy (then the ratio is 1 up to rounding).
    shifted = _rewrite(
        scored, tmp_path / "shifted", old_logprobs=lambda r: [[v - 0.5 for v in x] for x in r]
    )
    stale = sdar_update(tiny_model_dir, shifted, tmp_path / "a", UpdateConfig(lr=1e-3))
    fresh = sdar_update(
        tiny_model_dir,
        shifted,
        tmp_path / "b",
        UpdateConfig(lr=1e-3, recompute_old_logprobs=True),
        ref_model_dir=tiny_model_dir,  # the same weights: the KL term starts at 0
    )
    assert stale["ppo_kl"] == pytest.approx(-0.5, abs=1e-4) and stale["pg_clipfrac"] > 0.2
    assert abs(fresh["ppo_kl"]) < 1e-5 and fresh["pg_clipfrac"] == 0.0
    assert fresh["kl_loss"] < 1e-9


def test_distill_coef_overrides_the_presets(tiny_model_dir, scored, tmp_path):
    # the same batch at a negligible lr: the total losses differ by (0.1 - 0.01) x the
    # distillation loss, which the coefficient scales (L = ... + distill_coef * L_sd)
    common = dict(algorithm="sdar", lr=1e-12, mini_batch_size=None, **SGD)
    preset = sdar_update(tiny_model_dir, scored, tmp_path / "a", UpdateConfig(**common))
    raised = sdar_update(
        tiny_model_dir, scored, tmp_path / "b", UpdateConfig(distill_coef=0.1, **common)
    )
    assert raised["sdar/loss"] == pytest.approx(preset["sdar/loss"], rel=1e-6)
    assert preset["sdar/loss"] != 0.0
    expected = preset["loss"] + (0.1 - 0.01) * preset["sdar/loss"]
    assert raised["loss"] == pytest.approx(expected, rel=1e-6, abs=1e-9)
    with pytest.raises(ValueError, match="has no distillation term"):
        UpdateConfig(algorithm="grpo", distill_coef=0.1)
    with pytest.raises(ValueError, match="distill_coef must be > 0"):
        UpdateConfig(distill_coef=0.0)
