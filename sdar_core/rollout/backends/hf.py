"""Generation with Hugging Face transformers (CPU or GPU): our own sampling loop over a KV cache.

Why not `model.generate(output_logits=True)`: it keeps a (B, V) logits tensor for every generated
position (B = 64, 512 new tokens, Qwen's V = 151936 in float32 is 20 GB). The loop here keeps only
the sampled token's log-prob per step, and seeds one torch.Generator per prompt, so a prompt's
sample does not depend on its batch neighbours.

Each step: logits of the last position (`logits_to_keep=1`), in float32, divided by the
temperature; log-softmax over the full vocabulary gives the recorded log-prob (see base.py for the
convention); top-p then masks the tail and one token is drawn per row. Prompts are left-padded
with an attention mask and explicit position ids, so every row sees positions 0, 1, 2, … as in an
unpadded forward pass. Rows that have stopped are fed the pad token until the batch is done;
their extra tokens are discarded.

Two departures from `generate`'s defaults, both for speed on long prompts (measured in
benchmarks/decoding.py): the KV cache is allocated once for prompt + new tokens (transformers'
`StaticCache`, written in place) instead of `DynamicCache`, which concatenates — copies — every
layer's whole cache at every step; and the prompt is prefilled in row chunks of at most
`prefill_tokens` padded tokens, because one forward over a large batch of long prompts
allocates activations so large that the allocator maps and unmaps them for each layer (millions
of page faults, most of the time in the kernel). The chunks' caches are copied into the one
cache layer by layer, so the extra memory is one layer's worth.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import torch

from sdar_core.errors import ConfigError
from sdar_core.rollout.backends.base import (
    Generation,
    SamplingSettings,
    check_seeds,
    register_backend,
)

__all__ = [
    "PREFILL_TOKENS",
    "HFBackend",
    "cut_at_stop",
    "decode",
    "left_pad",
    "prefill",
    "sample_top_p",
]


def left_pad(prompts: Sequence[Sequence[int]], *, pad_id: int, device: torch.device):
    """Ids (B, T) left-padded with `pad_id`, the attention mask (B, T) and positions (B, T)."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        if prompt:
            ids[row, width - len(prompt) :] = torch.tensor(list(prompt), dtype=torch.long)
            mask[row, width - len(prompt) :] = 1
    positions = (mask.cumsum(dim=-1) - 1).clamp(min=0)  # (B, T) 0, 1, … from each row's start
    return ids.to(device), mask.to(device), positions.to(device)


def sample_top_p(
    logprobs: torch.Tensor, generators: Sequence[torch.Generator], *, top_p: float
) -> torch.Tensor:
    """One token per row of `logprobs` (B, V), drawn from the top-p nucleus with row i's generator.

    The nucleus is the smallest set of most likely tokens whose mass reaches top_p (the most
    likely token is always in it). Each row draws one uniform number u from its generator and
    takes the first token whose cumulative mass exceeds u × the row's mass (inverse CDF), all
    rows at once: `torch.multinomial` per row would draw V exponential numbers per row and step
    (measured in benchmarks/decoding.py: a few ms per row at V = 49k on a busy CPU core).
    """
    probs = logprobs.exp()  # (B, V)
    if top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)  # (B, V)
        mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs  # (B, V)
        sorted_probs = sorted_probs.masked_fill(mass_before >= top_p, 0.0)
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_probs)  # (B, V)
    cdf = probs.cumsum(dim=-1)  # (B, V)
    u = torch.cat([torch.rand(1, generator=g, device=g.device) for g in generators])  # (B,)
    target = (u.to(cdf.device) * cdf[:, -1])[:, None]  # (B, 1)
    chosen = torch.searchsorted(cdf, target, right=True).squeeze(-1)  # (B,) first cdf > target
    # rounding can put target at the row's total: fall back to its last token with mass
    last = probs.shape[-1] - 1 - (probs.flip(-1) > 0).int().argmax(dim=-1)  # (B,)
    return torch.minimum(chosen, last)  # (B,)


PREFILL_TOKENS = 8192  # padded prompt tokens per prefill chunk (benchmarks/decoding.py)

# pick(last-position logits (B, V) float32) -> (chosen tokens (B,), their log-probs (B,))
Picker = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def prefill(
    model: torch.nn.Module,
    ids: torch.Tensor,
    mask: torch.Tensor,
    positions: torch.Tensor,
    cache,
    *,
    prefill_tokens: int | None,
) -> torch.Tensor:
    """Run the left-padded prompts `ids` (B, T) into `cache`; returns the last position's logits
    (B, V) in float32. With `prefill_tokens`, rows go in chunks of at most that many padded
    tokens (at least one row per chunk), each into its own cache, copied into `cache` layer by
    layer (module docstring)."""
    from transformers import DynamicCache

    rows = len(ids) if prefill_tokens is None else max(1, prefill_tokens // ids.shape[1])
    if rows >= len(ids):
        out = model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        return out.logits[:, -1].float()
    parts, logits = [], []
    for start in range(0, len(ids), rows):
        chunk = slice(start, start + rows)
        out = model(
            input_ids=ids[chunk],
            attention_mask=mask[chunk],
            position_ids=positions[chunk],
            past_key_values=DynamicCache(config=model.config),
            use_cache=True,
            logits_to_keep=1,
        )
        parts.append(out.past_key_values)
        logits.append(out.logits[:, -1].float())
    for layer in range(len(parts[0].layers)):
        keys = torch.cat([part.layers[layer].keys for part in parts])  # (B, heads, T, head_dim)
        values = torch.cat([part.layers[layer].values for part in parts])
        cache.update(keys, values, layer)
        for part in parts:  # free this layer of the chunks' caches before the next one
            part.layers[layer].keys = part.layers[layer].values = None
    return torch.cat(logits)  # (B, V)


@torch.no_grad()
def decode(
    model: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    *,
    pick: Picker,
    max_new_tokens: int,
    stop_token_ids: Sequence[int],
    pad_token_id: int,
    prefill_tokens: int | None = PREFILL_TOKENS,
) -> tuple[list[list[int]], list[list[float]]]:
    """The left-padded KV-cache loop shared by sampling and greedy decoding.

    `pick` chooses each step's tokens; rows that have stopped are fed the pad token until every
    row has stopped or `max_new_tokens` is reached. Returns the raw rows (tokens and log-probs,
    stop token and padding included): cut them with `cut_at_stop`. `prefill_tokens`: the prompt
    prefill's row-chunk budget (None: one forward over the whole batch).
    """
    from transformers import StaticCache

    device = next(model.parameters()).device
    ids, mask, positions = left_pad(prompts, pad_id=pad_token_id, device=device)
    cache = StaticCache(config=model.config, max_cache_len=ids.shape[1] + max_new_tokens)
    logits = prefill(model, ids, mask, positions, cache, prefill_tokens=prefill_tokens)
    stop_ids = torch.tensor(list(stop_token_ids), device=device)
    done = torch.zeros(len(prompts), dtype=torch.bool, device=device)  # (B,)
    tokens, logprobs = [], []
    for step in range(max_new_tokens):
        chosen, chosen_logprobs = pick(logits)  # (B,), (B,)
        tokens.append(torch.where(done, pad_token_id, chosen))
        logprobs.append(chosen_logprobs)
        done |= torch.isin(tokens[-1], stop_ids)
        if bool(done.all()) or step == max_new_tokens - 1:
            break
        positions = positions[:, -1:] + 1
        mask = torch.cat([mask, mask.new_ones((len(prompts), 1))], dim=-1)
        out = model(
            input_ids=tokens[-1][:, None],
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        logits = out.logits[:, -1].float()
    return torch.stack(tokens, 1).tolist(), torch.stack(logprobs, 1).tolist()


def cut_at_stop(row: Sequence[int], stop_token_ids: Sequence[int]) -> int | None:
    """Length of `row` up to and including its first stop token; None when it has none."""
    stops = set(stop_token_ids)
    return next((i + 1 for i, t in enumerate(row) if t in stops), None)


class HFBackend:
    """Batched sampling with a transformers causal LM (see the module docstring)."""

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        settings: SamplingSettings,
        stop_token_ids: Sequence[int],
        pad_token_id: int,
        max_batch_size: int = 64,
        prefill_tokens: int | None = PREFILL_TOKENS,
    ) -> None:
        if max_batch_size < 1:
            raise ConfigError(f"max_batch_size must be >= 1, got {max_batch_size}: use 64")
        if prefill_tokens is not None and prefill_tokens < 1:
            raise ConfigError(
                f"prefill_tokens must be >= 1 or None, got {prefill_tokens}: use {PREFILL_TOKENS}"
            )
        if not stop_token_ids:
            raise ConfigError("stop_token_ids is empty: pass the tokenizer's eos token id")
        self.model = model.eval()
        self.settings = settings
        self.stop_token_ids = tuple(int(t) for t in stop_token_ids)
        self.pad_token_id = int(pad_token_id)
        self.max_batch_size = max_batch_size
        self.prefill_tokens = prefill_tokens

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def generate(
        self, prompts: Sequence[Sequence[int]], *, seeds: Sequence[int]
    ) -> list[Generation]:
        check_seeds(prompts, seeds)
        if any(len(p) == 0 for p in prompts):
            raise ConfigError("a prompt is empty: every prompt needs at least one token")
        out: list[Generation] = []
        for start in range(0, len(prompts), self.max_batch_size):
            stop = start + self.max_batch_size
            out += self._generate_batch(prompts[start:stop], seeds[start:stop])
        return out

    def _generate_batch(
        self, prompts: Sequence[Sequence[int]], seeds: Sequence[int]
    ) -> list[Generation]:
        settings = self.settings
        generators = [torch.Generator(device=self.device).manual_seed(int(s)) for s in seeds]

        def pick(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            step_logprobs = torch.log_softmax(logits / settings.temperature, -1)  # (B, V)
            chosen = sample_top_p(step_logprobs, generators, top_p=settings.top_p)  # (B,)
            return chosen, step_logprobs.gather(-1, chosen[:, None]).squeeze(-1)

        tokens, logprobs = decode(
            self.model,
            prompts,
            pick=pick,
            max_new_tokens=settings.max_new_tokens,
            stop_token_ids=self.stop_token_ids,
            pad_token_id=self.pad_token_id,
            prefill_tokens=self.prefill_tokens,
        )
        return self._collect(tokens, logprobs)

    def _collect(self, tokens: list[list[int]], logprobs: list[list[float]]) -> list[Generation]:
        """Cut each row after its first stop token; rows without one are truncated."""
        out = []
        for row_tokens, row_logprobs in zip(tokens, logprobs, strict=True):
            end = cut_at_stop(row_tokens, self.stop_token_ids)
            reason = "length" if end is None else "stop"
            end = len(row_tokens) if end is None else end
            out.append(Generation(tuple(row_tokens[:end]), tuple(row_logprobs[:end]), reason))
        return out

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]


def stop_token_ids_of(tokenizer, model) -> list[int]:
    """The tokenizer's eos id plus every eos id in the model's generation config."""
    ids = [tokenizer.eos_token_id]
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids += configured if isinstance(configured, list) else [configured]
    return sorted({int(i) for i in ids if i is not None})


@register_backend("hf")
def make_hf_backend(
    model_dir: str | os.PathLike[str],
    *,
    settings: SamplingSettings,
    device: str = "cpu",
    dtype: str | None = "float32",
    max_batch_size: int = 64,
    lora_dir: str | os.PathLike[str] | None = None,
    trust_remote_code: bool = False,
    seed: int = 0,
) -> HFBackend:
    """Load `model_dir` (safetensors only; a LoRA checkpoint is merged into its base) and its
    tokenizer's stop ids into an HFBackend; `lora_dir`, an adapter for `model_dir`, is merged in.

    `seed` is unused: every request carries its own seed.
    """
    from sdar_core.models import load_model, load_tokenizer, merge_adapter

    del seed
    model = load_model(model_dir, dtype=dtype, device=device, trust_remote_code=trust_remote_code)
    if lora_dir is not None:  # merged once: sampling then runs at the base model's speed
        model = merge_adapter(model, lora_dir)
    tokenizer = load_tokenizer(model_dir, trust_remote_code=trust_remote_code)
    return HFBackend(
        model,
        settings=settings,
        stop_token_ids=stop_token_ids_of(tokenizer, model),
        pad_token_id=tokenizer.pad_token_id,
        max_batch_size=max_batch_size,
    )
