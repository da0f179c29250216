"""The update stage: `sdar_update(model_dir, trajectories_dir, out_dir, config)` trains the policy
on (scored) trajectories with the chosen Algorithm preset and writes the new checkpoint.

1. Reads the trajectories (teacher log-probs required when the preset needs them) and refuses an
   empty batch, a batch without trained tokens, a non-finite old or teacher log-prob on a trained
   token, token ids outside the model's vocabulary and a reference checkpoint of another
   architecture, each with the fix.
2. Rewards and advantages as the authors assign them (their `apply_invalid_action_penalty` and
   `compute_grpo_outcome_advantage`): each sample's score is
       r = episode_reward − invalid_action_penalty × n_invalid_actions
   where a per-step sample counts only its own step's invalid action (0 or 1) and a
   whole-trajectory sample the episode's; so the step samples of an episode that mixes valid and
   invalid steps carry different scores. With the presets' `stats_over="step"` the group
   statistics pool every step sample of the group; with `stats_over="episode"` each episode is
   one unit whose reward is `episode_reward − penalty × (the episode's invalid actions)` and every
   step sample gets its episode's advantage. Each sample's advantage is broadcast to its tokens.
   `config.invalid_action_penalty` (and `distill_coef`) override the preset's when set.
3. Trainer state (state.py): the optimizer's moments and the counters carried in `model_dir`
   (written by the previous round's update) are verified against their checksums and restored,
   so AdamW, the schedule and RLSD's λ run on across rounds as in one long training job; the
   run's first update (a base or warm-start model) starts them. A later round's checkpoint
   without its trainer state is refused unless `trainer_state="fresh"`. This update is
   training iteration `carried + 1`; its learning rate is the schedule's at that iteration,
   and it takes ceil(n_samples / mini_batch_size) × epochs optimizer steps.
4. Log-probs before training, in one no-grad pass over the batch: the reference log-probs for the
   KL term (when kl_coef > 0) from the run's starting model `ref_model_dir` (the pipeline wires
   the starting checkpoint into every round; with LoRA the same weights with the adapter
   disabled); and, with `recompute_old_logprobs`, the old log-probs. From the second iteration
   on, a full fine-tune without `ref_model_dir` is refused: the reference would otherwise drift
   with the policy.
5. The shared loop (loop.py) with `objective.rl_loss`; the new checkpoint (safetensors, tokenizer,
   metrics.json and `trainer_state/`; only the adapter with LoRA) is written atomically. With
   `weights_dtype` (e.g. bfloat16 from a float32 update) the weights are saved in that dtype and
   the trainer state keeps the full-precision ones, which the next update loads first (state.py).
   With `state_dir` the optimizer state lives in its own folder there, and once the checkpoint
   is in place the folders no resume needs are pruned (`state.prune_state_folders`).

Log-probs use the rollout's temperature (metadata) unless `config.temperature` is set.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from sdar_core.algos import Algorithm, get_advantage_estimator, get_algorithm
from sdar_core.errors import ArtifactError, ConfigError, SdarError
from sdar_core.models.checksums import verify_checksums, write_checksums
from sdar_core.rollout.schema import read_metadata, read_trajectories
from sdar_core.train.batch import Sample, collate, micro_batches
from sdar_core.train.config import UpdateConfig
from sdar_core.train.engines import is_main_process, make_engine
from sdar_core.train.loop import train_loop
from sdar_core.train.objective import RLSettings, rl_loss
from sdar_core.train.parallel import barrier, gather_rows, rank_and_size, start_process_group
from sdar_core.train.policy import (
    PolicyHead,
    check_same_architecture,
    load_policy,
    model_config_dir,
    model_config_of,
    reference_mode,
    save_checkpoint,
)
from sdar_core.train.state import (
    STATE_DIR,
    TrainerCounters,
    load_master_weights,
    prune_state_folders,
    read_carried_state,
    read_counters,
    save_master_weights,
    seed_global_rng,
    write_counters,
)

__all__ = ["add_start_logprobs", "build_rl_samples", "sample_rewards", "sdar_update"]


def sdar_update(
    model_dir: str | os.PathLike[str],
    trajectories_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    config: UpdateConfig,
    *,
    ref_model_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """One RL update (module docstring); returns the metrics (also in out_dir/metrics.json)."""
    meta = read_metadata(trajectories_dir)
    rows = _read_rows(trajectories_dir, config.algorithm)
    algo = get_algorithm(config.algorithm).for_env(rows["env_name"][0])
    if config.distill_coef is not None:  # the coefficient-sensitivity arms (sdar replicate)
        algo = algo.with_overrides(distill_coef=config.distill_coef)
    if config.invalid_action_penalty is not None:  # over the preset's and its env's
        algo = algo.with_overrides(invalid_action_penalty=config.invalid_action_penalty)
    carried = read_carried_state(model_dir) if config.trainer_state == "resume" else None
    _check_inputs(model_dir, rows, config, ref_model_dir, carried, algo)
    iteration = (carried.iteration if carried else 0) + 1
    seed_global_rng(config.seed, iteration)  # before anything draws (state.py)
    temperature = _temperature(config, meta)
    samples, adv_metrics = build_rl_samples(rows, algo)
    state_path = _state_location(model_dir, carried) if carried is not None else None
    start_process_group(config.backend, config.device)
    head = PolicyHead(
        load_policy(model_dir, config),
        temperature=temperature,
        chunk_size=config.chunk_size,
        with_entropy=algo.entropy_coeff > 0,
    )
    if state_path is not None and config.backend == "torch":
        # the checkpoint's weights may be rounded copies (weights_dtype): train on from the
        # full-precision ones, before the start log-probs read the policy (state.py)
        load_master_weights(head, state_path / config.backend)
    pad_id = _pad_id(model_dir)
    gap = add_start_logprobs(
        head, samples, algo, config, ref_model_dir, pad_id, model_dir=model_dir
    )
    total = config.total_iterations or iteration
    engine = make_engine(head, config, lr=config.lr or algo.lr, total_steps=max(total, iteration))
    timings = {}
    if state_path is not None:
        started = time.perf_counter()
        engine.load_state(state_path / config.backend)
        timings["state_load_seconds"] = time.perf_counter() - started
    clip = {
        name: getattr(config, name)
        for name in ("clip_ratio_low", "clip_ratio_high", "clip_ratio_c")
        if getattr(config, name) is not None
    }
    settings = RLSettings(clip=clip, iteration=iteration)

    def loss_fn(outputs, batch, step):
        return rl_loss(outputs, batch, algo, settings)

    summary = train_loop(
        engine,
        samples,
        config,
        loss_fn=loss_fn,
        agg_mode=algo.agg_mode,
        pad_id=pad_id,
        position=lambda step: iteration - 1,
        shuffle_offset=iteration,
    )
    applied = int(summary["steps"] - summary["skipped_steps"])
    counters = TrainerCounters(
        iteration=iteration,
        optimizer_step=(carried.optimizer_step if carried else 0) + applied,
        backend=config.backend,
        optimizer=config.optimizer,
        lora=config.lora,
        extra={"algorithm": algo.name},
    )
    metrics = (
        summary
        | adv_metrics
        | timings
        | gap
        | {
            "n_samples": float(len(samples)),
            "iteration": float(iteration),
            "optimizer_step": float(counters.optimizer_step),
            "algorithm": algo.name,
            "temperature": temperature,
            "config": config.model_dump(mode="json"),
        }
    )
    state = engine.state_dict()  # every rank takes part in the ZeRO-3 gather
    _check_finite_state(state)
    staging = _save_trainer_state(engine, out_dir, counters, config, metrics)
    if is_main_process():
        save_checkpoint(
            engine.module.model, state, model_dir, out_dir, metrics,
            extra_dirs={STATE_DIR: staging}, dtype=_weights_dtype(config),
        )  # fmt: skip
        if config.state_dir is not None:  # only after the checkpoint naming the new one is in
            written = read_counters(out_dir).extra["location"]
            prune_state_folders(Path(config.state_dir), keep={Path(written)} | {state_path})
    return metrics


def _weights_dtype(config: UpdateConfig) -> torch.dtype | None:
    """The checkpoint's weights dtype when it differs from the training dtype, else None."""
    if config.weights_dtype is None or config.weights_dtype == config.dtype:
        return None
    return getattr(torch, config.weights_dtype)


def _save_trainer_state(engine, out_dir, counters, config: UpdateConfig, metrics) -> Path:
    """Write the trainer state to a staging folder beside out_dir (every rank takes part with
    DeepSpeed); save_checkpoint then moves it into the checkpoint before the final rename. With
    `state_dir`, the optimizer state goes to its own folder there (written aside, then renamed)
    and the checkpoint's trainer_state/ holds only the counters naming it."""
    out = Path(out_dir)
    staging = out.parent / f".{out.name}.{STATE_DIR}"
    target = staging
    if config.state_dir is not None:
        digest = hashlib.sha1(str(out.resolve()).encode()).hexdigest()[:12]
        final = Path(config.state_dir) / f"iteration-{counters.iteration:05d}-{digest}"
        target = final.parent / f".{final.name}.tmp"
        counters = replace(counters, extra=counters.extra | {"location": str(final.resolve())})
    if is_main_process():
        for folder in {staging, target}:
            shutil.rmtree(folder, ignore_errors=True)
        (target / config.backend).mkdir(parents=True)
        staging.mkdir(parents=True, exist_ok=True)
    barrier()
    started = time.perf_counter()
    engine.save_state(target / config.backend)
    barrier()
    if is_main_process():
        if config.backend == "torch" and _weights_dtype(config) is not None:
            save_master_weights(engine.named, target / config.backend)
        if target is not staging:  # the checkpoint's checksums do not reach this folder
            write_checksums(target)
            shutil.rmtree(final, ignore_errors=True)
            os.replace(target, final)
        write_counters(staging, counters)
    metrics["state_save_seconds"] = time.perf_counter() - started
    return staging


def _state_location(model_dir, carried: TrainerCounters) -> Path:
    """Where the carried optimizer state lives: inside the checkpoint (verified with the
    checkpoint), or the folder its counters name (`state_dir`; verified here)."""
    location = carried.extra.get("location")
    path = Path(location) if location else Path(model_dir) / STATE_DIR
    if not path.is_dir():
        raise ArtifactError(
            f"{model_dir} names its trainer state at {path}, which does not exist here: mount "
            "the same volume at the same path (state_dir), or set trainer_state='fresh' (a KFP "
            "workspace ends with its run: resubmit a failed run without the cache, or keep the "
            "state on a PVC with --pvc-name)"
        )
    if location:
        verify_checksums(path, nested=True)
    return path


def _check_finite_state(state: dict[str, torch.Tensor] | None) -> None:
    for name, tensor in (state or {}).items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise FloatingPointError(
                f"weight {name!r} is not finite after the update: no checkpoint is written; "
                "lower lr or keep max_grad_norm set"
            )


def _read_rows(trajectories_dir, algorithm: str):
    algo = get_algorithm(algorithm)
    try:
        rows = read_trajectories(trajectories_dir, require_teacher=algo.needs_teacher)
    except ArtifactError as err:
        if algo.needs_teacher and "unscored" in str(err):
            raise ArtifactError(
                f"algorithm {algorithm!r} needs teacher log-probs but {trajectories_dir} has "
                "none: run score_teacher on it first, or choose an algorithm without a teacher "
                "(grpo, skill_grpo)"
            ) from None
        raise
    if len(rows) == 0:
        raise SdarError(
            f"{trajectories_dir} holds no samples (empty batch): generate rollouts with "
            "n_tasks >= 1 and group_size >= 2 before updating"
        )
    if not any(any(m) for m in rows["response_mask"]):
        raise SdarError(
            f"{trajectories_dir} has no trained tokens (every response_mask is 0): check that "
            "the rollouts produced responses (max_new_tokens >= 1)"
        )
    return rows


def _check_inputs(model_dir, rows, config: UpdateConfig, ref_model_dir, carried, algo) -> None:
    vocab = int(model_config_of(model_dir)["vocab_size"])
    top = max(max(max(r, default=0) for r in rows[c]) for c in ("prompt_ids", "response_ids"))
    if top >= vocab:
        raise ArtifactError(
            f"the trajectories hold token id {top} but the model {model_dir} has a vocabulary of "
            f"{vocab}: they were made with another tokenizer; update the checkpoint that "
            "generated them"
        )
    for column in ("old_logprobs", "teacher_logprobs"):
        if column in rows.column_names:
            _check_finite_column(rows, column)
    if carried is not None:
        for field in ("backend", "optimizer", "lora"):
            if getattr(carried, field) != getattr(config, field):
                raise ConfigError(
                    f"{model_dir} carries a trainer state written with {field}="
                    f"{getattr(carried, field)!r} but this update has {field}="
                    f"{getattr(config, field)!r}: use the same {field} for every round, or set "
                    "trainer_state='fresh' to start a new optimizer"
                )
    if ref_model_dir is not None:
        check_same_architecture(model_config_dir(Path(model_dir)), ref_model_dir, what="reference")
    elif carried is not None and algo.kl_coef > 0 and not config.lora:
        raise ConfigError(
            f"{model_dir} is iteration {carried.iteration} of a run, and the KL reference must "
            "be the run's starting model, not this round's: pass ref_model_dir (the pipeline "
            "wires the starting checkpoint into every update)"
        )


def _check_finite_column(rows, column: str) -> None:
    for i, (values, mask) in enumerate(zip(rows[column], rows["response_mask"], strict=True)):
        for t, (value, m) in enumerate(zip(values, mask, strict=True)):
            if m and not math.isfinite(value):
                raise ArtifactError(
                    f"sample {i} (group {rows['group_id'][i]}, member {rows['member'][i]}) has "
                    f"{column}={value} at response token {t}: the pass that wrote it overflowed; "
                    "regenerate the trajectories (or re-score them with score_teacher)"
                )


def _temperature(config: UpdateConfig, meta: dict) -> float:
    if config.temperature is not None:
        return config.temperature
    try:
        return float(meta["config"]["temperature"])
    except (KeyError, TypeError):
        raise ConfigError(
            "the trajectories do not record their sampling temperature: set temperature in "
            "UpdateConfig to the one the rollouts used"
        ) from None


def _pad_id(model_dir) -> int:
    from sdar_core.models import load_tokenizer
    from sdar_core.train.policy import model_config_dir

    return int(load_tokenizer(model_config_dir(Path(model_dir))).pad_token_id)


def sample_rewards(rows, *, invalid_action_penalty: float) -> torch.Tensor:
    """(N,) the authors' score of each sample: episode_reward − penalty × n_invalid_actions, with
    a per-step sample's own step counted (0 or 1) and a whole-trajectory sample's episode."""
    reward = torch.tensor(rows["episode_reward"], dtype=torch.float64)
    invalid = torch.tensor(rows["n_invalid_actions"], dtype=torch.float64)
    return reward - invalid_action_penalty * invalid


def episode_level_rewards(rows, episodes: list[str], *, invalid_action_penalty: float):
    """(N,) each sample's episode reward minus the penalty of all the episode's invalid
    actions (what `stats_over="episode"` uses: one reward per episode)."""
    invalid: dict[str, float] = {}
    for ep, n in zip(episodes, rows["n_invalid_actions"], strict=True):
        invalid[ep] = invalid.get(ep, 0.0) + float(n)
    total = torch.tensor([invalid[ep] for ep in episodes], dtype=torch.float64)
    return (
        torch.tensor(rows["episode_reward"], dtype=torch.float64) - invalid_action_penalty * total
    )


def outcome_flat_group_ratio(group_ids, episode_rewards) -> float:
    """Share of groups whose episodes all ended with the same reward (all won or all lost): the
    outcome gives GRPO no signal there, whatever the invalid-action penalty adds (the
    advantages' own `flat_group_ratio` counts a group flat only when the penalties tie too)."""
    rewards: dict[Any, set[float]] = {}
    for group, reward in zip(group_ids, episode_rewards, strict=True):
        rewards.setdefault(group, set()).add(float(reward))
    return sum(len(r) == 1 for r in rewards.values()) / len(rewards) if rewards else 0.0


def build_rl_samples(rows, algo: Algorithm) -> tuple[list[Sample], dict[str, float]]:
    """Samples with response_mask, old/teacher log-probs and token advantages."""
    episodes = [f"{g}/{m}" for g, m in zip(rows["group_id"], rows["member"], strict=True)]
    penalty = algo.invalid_action_penalty
    per_episode = episode_level_rewards(rows, episodes, invalid_action_penalty=penalty)
    if algo.stats_over == "episode":
        rewards = per_episode
    else:
        rewards = sample_rewards(rows, invalid_action_penalty=penalty)
    advantages, metrics = get_advantage_estimator(algo.advantage_estimator)(
        rewards,
        rows["group_id"],
        episode_ids=episodes,
        norm_by_std=algo.norm_by_std,
        stats_over=algo.stats_over,
    )
    names = ["prompt_ids", "response_ids", "response_mask", "old_logprobs"]
    names += ["teacher_logprobs"] if algo.needs_teacher else []
    # each column read once: a Dataset's row look-up (`rows[name][i]`) deep-copies its
    # features, ~2 ms a time, 4 s of a 443-sample update
    column = {name: list(rows[name]) for name in names}
    samples = []
    for i, mask in enumerate(column["response_mask"]):
        mask = [float(m) for m in mask]
        columns = {
            "response_mask": mask,
            "old_logprobs": list(column["old_logprobs"][i]),
            "advantages": [float(advantages[i]) * m for m in mask],
        }
        if algo.needs_teacher:
            columns["teacher_logprobs"] = list(column["teacher_logprobs"][i])
        samples.append(
            Sample(list(column["prompt_ids"][i]), list(column["response_ids"][i]), columns)
        )
    metrics["reward/mean"] = float(rewards.mean())
    metrics["reward/episode_mean"] = float(per_episode.mean())
    metrics["advantages/outcome_flat_group_ratio"] = outcome_flat_group_ratio(
        rows["group_id"], rows["episode_reward"]
    )
    return samples, metrics


@torch.no_grad()
def _logprobs_of(head: PolicyHead, samples: list[Sample], config, pad_id: int) -> list[list]:
    """Response log-probs of every sample; under a launcher each rank runs its share of the
    micro-batches and the rows are shared (parallel.py)."""
    rank, size = rank_and_size()
    out: dict[int, list[float]] = {}
    index = {id(s): i for i, s in enumerate(samples)}
    micros = micro_batches(samples, max_tokens=config.micro_batch_tokens)
    for micro in micros[rank::size]:
        batch = collate(micro, pad_id=pad_id, device=config.device_for_rank())
        logprobs = head(batch).float().cpu()  # (B, T); the head returns no entropy here
        for b, s in enumerate(micro):
            out[index[id(s)]] = logprobs[b, : len(s.response_ids)].tolist()
    return gather_rows(out, [len(s.response_ids) for s in samples], size=size)


def add_start_logprobs(
    head, samples, algo: Algorithm, config: UpdateConfig, ref_dir, pad_id, *, model_dir=None
) -> dict[str, float]:
    """ref_logprobs (KL, from the run's starting model) and recomputed old_logprobs, before the
    first step (module doc); with the recompute, the gap it replaced (`logprob_gap`)."""
    was_training = head.training
    with_entropy, head.with_entropy = head.with_entropy, False
    head.eval()
    gap = {}
    if config.recompute_old_logprobs:
        recomputed = _logprobs_of(head, samples, config, pad_id)
        gap = logprob_gap(samples, recomputed)
        _set(samples, "old_logprobs", recomputed)
    if algo.kl_coef > 0:
        if ref_dir is None or config.lora or _same_dir(ref_dir, model_dir):
            # the policy before its first step is the reference: the starting model itself in
            # a run's first update; with LoRA the base with the adapter disabled
            with reference_mode(head):
                ref = _logprobs_of(head, samples, config, pad_id)
        else:
            from sdar_core.models import load_model

            ref_model = load_model(ref_dir, dtype=config.dtype, device=config.device_for_rank())
            ref_head = PolicyHead(
                ref_model, temperature=head.temperature, chunk_size=head.chunk_size
            )
            ref = _logprobs_of(ref_head, samples, config, pad_id)
            del ref_head, ref_model
        _set(samples, "ref_logprobs", ref)
    head.train(was_training)
    head.with_entropy = with_entropy
    return gap


GAP_THRESHOLD = 0.1  # nats: at β = 5, enough to move the SDAR gate σ(5δ) by about 0.12


def logprob_gap(samples: list[Sample], recomputed: list[list[float]]) -> dict[str, float]:
    """How far the rollout engine's log-probs (`old_logprobs`, e.g. vLLM's sampler) are from the
    training engine's on the same response tokens: mean |Δ| and the share of tokens with
    |Δ| > GAP_THRESHOLD."""
    diffs = [
        abs(old - new)
        for sample, row in zip(samples, recomputed, strict=True)
        for old, new, m in zip(
            sample.columns["old_logprobs"], row, sample.columns["response_mask"], strict=True
        )
        if m
    ]
    if not diffs:
        return {}
    return {
        "logprob_gap/mean_abs": sum(diffs) / len(diffs),
        "logprob_gap/share_over_0.1": sum(d > GAP_THRESHOLD for d in diffs) / len(diffs),
    }


def _same_dir(a, b) -> bool:
    return b is not None and Path(a).resolve() == Path(b).resolve()


def _set(samples: list[Sample], name: str, values: list[list[float]]) -> None:
    for sample, row in zip(samples, values, strict=True):
        mask = sample.columns["response_mask"]
        sample.columns[name] = [v * m for v, m in zip(row, mask, strict=True)]
