"""Who acts during evaluation: the checkpoint (greedy or sampled), the expert, or random.

Greedy decoding lives here because the rollout backends only sample (they reject temperature 0):
`greedy_generate` runs the hf backend's KV-cache loop (`decode`) with argmax instead of a
draw. Sampled evaluation reuses the hf backend with one seed per (run seed, turn, task index),
where the task index is the task's position in the sorted validation set — never its batch slot —
so results do not depend on batch size.

A LoRA adapter directory is loaded as base + adapter and merged (`merge_and_unload`) before
generation.

The random baseline is chosen by environment name (`RANDOM_POLICIES`: `factory(seed=...)` gives a
policy `records -> texts`). Search-QA has none: a random answer scores 0 exact match, which is
no baseline worth playing, so `policy="random"` with env="search" is refused with the names known.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from sdar_core.algos import Registry
from sdar_core.evaluation.config import EvalConfig
from sdar_core.rollout.backends.base import Generation, SamplingSettings
from sdar_core.rollout.backends.hf import HFBackend, cut_at_stop, decode, stop_token_ids_of
from sdar_core.rollout.loop import sampling_seed

__all__ = ["RANDOM_POLICIES", "ModelPolicy", "greedy_generate", "load_eval_model"]

RANDOM_POLICIES: Registry[Any] = Registry("random policy (environment)")


@RANDOM_POLICIES.register("alfworld")
def _alfworld_random(*, seed: int) -> Any:
    from sdar_core.envs.alfworld import RandomPolicy

    return RandomPolicy(seed=seed)


@RANDOM_POLICIES.register("webshop")
def _webshop_random(*, seed: int) -> Any:
    from sdar_core.envs.webshop import RandomPolicy

    return RandomPolicy(seed=seed)


@RANDOM_POLICIES.register("search")
def _search_random(*, seed: int) -> Any:
    from sdar_core.envs.search import RandomSearcher

    return RandomSearcher(seed=seed)


def load_eval_model(model_dir: str | Path, config: EvalConfig) -> tuple[Any, Any]:
    """(model in eval mode, tokenizer); a LoRA adapter is merged into its base."""
    from sdar_core.models import adapter_base, load_model, load_tokenizer

    model = load_model(model_dir, dtype=config.dtype, device=config.device)
    return model.eval(), load_tokenizer(adapter_base(model_dir) or model_dir)


@torch.no_grad()
def greedy_generate(
    model: Any,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    stop_token_ids: Sequence[int],
    pad_token_id: int,
) -> list[list[int]]:
    """Argmax continuation of each prompt, cut after its first stop token."""

    def pick(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return logits.argmax(dim=-1), torch.zeros(logits.shape[0], device=logits.device)

    rows, _ = decode(
        model,
        prompts,
        pick=pick,
        max_new_tokens=max_new_tokens,
        stop_token_ids=stop_token_ids,
        pad_token_id=pad_token_id,
    )
    return [row[: cut_at_stop(row, stop_token_ids) or len(row)] for row in rows]


class ModelPolicy:
    """Turns the environment's prompts into model texts, greedy or seeded sampling."""

    def __init__(self, model: Any, tokenizer: Any, config: EvalConfig) -> None:
        self.model, self.tokenizer, self.config = model, tokenizer, config
        self.stop_ids = stop_token_ids_of(tokenizer, model)
        self.sampler = None
        if config.decoding == "sample":
            settings = SamplingSettings(
                temperature=config.temperature,
                top_p=config.top_p,
                max_new_tokens=config.max_new_tokens,
            )
            self.sampler = HFBackend(
                model,
                settings=settings,
                stop_token_ids=self.stop_ids,
                pad_token_id=tokenizer.pad_token_id,
                max_batch_size=config.batch_size,
            )

    def texts(
        self,
        prompts: Sequence[Sequence[int]],
        *,
        run_seed: int,
        turn: int,
        task_indices: Sequence[int],
    ) -> list[str]:
        """One decoded text per prompt (special tokens removed)."""
        if self.sampler is None:
            rows = greedy_generate(
                self.model,
                prompts,
                max_new_tokens=self.config.max_new_tokens,
                stop_token_ids=self.stop_ids,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        else:
            seeds = [sampling_seed(run_seed, 0, turn, i) for i in task_indices]
            generations: list[Generation] = self.sampler.generate(prompts, seeds=seeds)
            rows = [list(g.token_ids) for g in generations]
        return [self.tokenizer.decode(row, skip_special_tokens=True) for row in rows]
