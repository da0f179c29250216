"""The update stage: `sdar_update(model_dir, trajectories_dir, out_dir, config)` trains the policy
on (scored) trajectories with the chosen Algorithm preset and writes the new checkpoint.

1. Reads the trajectories (teacher log-probs required when the preset needs them) and refuses an
   empty batch, a batch without trained tokens, token ids outside the model's vocabulary and a
   reference checkpoint of another architecture, each with the fix.
2. Advantages: the preset's estimator over episodes (episode id = group id + member) grouped by
   `group_id`, with `stats_over` and `norm_by_std` from the preset, on the reward
       r = episode_reward − invalid_action_penalty × n_invalid_actions
   (the reference subtracts the penalty from each invalid step's reward; summed over the episode
   it is the same number). Each sample's advantage is broadcast to its trained tokens.
3. Log-probs before training, in one no-grad pass over the batch: the reference log-probs for the
   KL term (when kl_coef > 0) from the frozen starting model — the policy itself before its first
   step, or `ref_model_dir` (loaded, used, freed), or with LoRA the same weights with the adapter
   disabled; and, with `recompute_old_logprobs`, the old log-probs. Since the reference does not
   change during the update, computing it once up front is the same as per step, and no second
   copy of the model stays in memory.
4. The shared loop (loop.py) with `objective.rl_loss`; the new checkpoint (safetensors, tokenizer,
   metrics.json; only the adapter with LoRA) is written atomically.

Log-probs use the rollout's temperature (metadata) unless `config.temperature` is set.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from sdar_core.algos import Algorithm, get_advantage_estimator, get_algorithm
from sdar_core.errors import ArtifactError, ConfigError, SdarError
from sdar_core.rollout.schema import read_metadata, read_trajectories
from sdar_core.train.batch import Sample, collate, micro_batches
from sdar_core.train.config import UpdateConfig
from sdar_core.train.engines import is_main_process, make_engine
from sdar_core.train.loop import count_steps, train_loop
from sdar_core.train.objective import RLSettings, rl_loss
from sdar_core.train.parallel import gather_rows, rank_and_size, start_process_group
from sdar_core.train.policy import (
    PolicyHead,
    check_same_architecture,
    load_policy,
    model_config_of,
    reference_mode,
    save_checkpoint,
)

__all__ = ["add_start_logprobs", "build_rl_samples", "episode_rewards", "sdar_update"]


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
    _check_inputs(model_dir, rows, config, ref_model_dir)
    temperature = _temperature(config, meta)
    samples, adv_metrics = build_rl_samples(rows, algo)
    start_process_group(config.backend, config.device)
    head = PolicyHead(
        load_policy(model_dir, config), temperature=temperature, chunk_size=config.chunk_size
    )
    pad_id = _pad_id(model_dir)
    add_start_logprobs(head, samples, algo, config, ref_model_dir, pad_id)
    total = count_steps(len(samples), config)
    engine = make_engine(head, config, lr=config.lr or algo.lr, total_steps=total)
    clip = {
        name: getattr(config, name)
        for name in ("clip_ratio_low", "clip_ratio_high", "clip_ratio_c")
        if getattr(config, name) is not None
    }

    def loss_fn(logprobs, batch, step):
        return rl_loss(logprobs, batch, algo, RLSettings(clip=clip, step=config.start_step + step))

    summary = train_loop(
        engine, samples, config, loss_fn=loss_fn, agg_mode=algo.agg_mode, pad_id=pad_id
    )
    metrics = (
        summary
        | adv_metrics
        | {
            "n_samples": float(len(samples)),
            "algorithm": algo.name,
            "temperature": temperature,
            "config": config.model_dump(mode="json"),
        }
    )
    state = engine.state_dict()  # every rank takes part in the ZeRO-3 gather
    if is_main_process():
        save_checkpoint(engine.module.model, state, model_dir, out_dir, metrics)
    return metrics


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


def _check_inputs(model_dir, rows, config: UpdateConfig, ref_model_dir) -> None:
    vocab = int(model_config_of(model_dir)["vocab_size"])
    top = max(max(max(r, default=0) for r in rows[c]) for c in ("prompt_ids", "response_ids"))
    if top >= vocab:
        raise ArtifactError(
            f"the trajectories hold token id {top} but the model {model_dir} has a vocabulary of "
            f"{vocab}: they were made with another tokenizer; update the checkpoint that "
            "generated them"
        )
    if ref_model_dir is not None:
        if config.lora:
            raise ConfigError(
                "ref_model_dir is ignored with LoRA (the reference is the base with the adapter "
                "disabled): drop ref_model_dir, or set lora=False"
            )
        check_same_architecture(model_dir, ref_model_dir, what="reference model")


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


def episode_rewards(rows, *, invalid_action_penalty: float) -> torch.Tensor:
    """(N,) r = episode_reward − penalty × n_invalid_actions, per sample."""
    reward = torch.tensor(rows["episode_reward"], dtype=torch.float64)
    invalid = torch.tensor(rows["n_invalid_actions"], dtype=torch.float64)
    return reward - invalid_action_penalty * invalid


def build_rl_samples(rows, algo: Algorithm) -> tuple[list[Sample], dict[str, float]]:
    """Samples with response_mask, old/teacher log-probs and token advantages."""
    rewards = episode_rewards(rows, invalid_action_penalty=algo.invalid_action_penalty)
    episodes = [f"{g}/{m}" for g, m in zip(rows["group_id"], rows["member"], strict=True)]
    advantages, metrics = get_advantage_estimator(algo.advantage_estimator)(
        rewards,
        rows["group_id"],
        episode_ids=episodes,
        norm_by_std=algo.norm_by_std,
        stats_over=algo.stats_over,
    )
    samples = []
    for i in range(len(rows["response_ids"])):
        mask = [float(m) for m in rows["response_mask"][i]]
        columns = {
            "response_mask": mask,
            "old_logprobs": list(rows["old_logprobs"][i]),
            "advantages": [float(advantages[i]) * m for m in mask],
        }
        if algo.needs_teacher:
            columns["teacher_logprobs"] = list(rows["teacher_logprobs"][i])
        samples.append(Sample(list(rows["prompt_ids"][i]), list(rows["response_ids"][i]), columns))
    metrics["reward/mean"] = float(rewards.mean())
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
        logprobs = head(batch).float().cpu()  # (B, T)
        for b, s in enumerate(micro):
            out[index[id(s)]] = logprobs[b, : len(s.response_ids)].tolist()
    return gather_rows(out, [len(s.response_ids) for s in samples], size=size)


def add_start_logprobs(head, samples, algo: Algorithm, config: UpdateConfig, ref_dir, pad_id):
    """ref_logprobs (KL) and recomputed old_logprobs, from the models at the start (module doc)."""
    was_training = head.training
    head.eval()
    if config.recompute_old_logprobs:
        _set(samples, "old_logprobs", _logprobs_of(head, samples, config, pad_id))
    if algo.kl_coef > 0:
        if ref_dir is not None:
            from sdar_core.models import load_model

            ref_model = load_model(ref_dir, dtype=config.dtype, device=config.device_for_rank())
            ref_head = PolicyHead(
                ref_model, temperature=head.temperature, chunk_size=head.chunk_size
            )
            ref = _logprobs_of(ref_head, samples, config, pad_id)
            del ref_head, ref_model
        else:
            with reference_mode(head):
                ref = _logprobs_of(head, samples, config, pad_id)
        _set(samples, "ref_logprobs", ref)
    head.train(was_training)


def _set(samples: list[Sample], name: str, values: list[list[float]]) -> None:
    for sample, row in zip(samples, values, strict=True):
        mask = sample.columns["response_mask"]
        sample.columns[name] = [v * m for v, m in zip(row, mask, strict=True)]
