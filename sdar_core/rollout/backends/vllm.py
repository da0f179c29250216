"""Generation with vLLM (GPU only), written against vLLM's documented offline API.

vLLM is imported lazily, inside `import_vllm`, so this module imports on machines without it; the
request building (`sampling_kwargs`, `engine_kwargs`) and output parsing (`parse_generation`,
`logprob_of`) are plain functions over plain values and are unit-tested with objects shaped like
vLLM's documented outputs (`RequestOutput.outputs[0].token_ids / .logprobs / .finish_reason`,
each log-prob entry a dict {token_id: Logprob(logprob=…)}).

Prompts go in as token ids (`{"prompt_token_ids": ids}`), never as text, so what was sampled is
conditioned on exactly the tokens we record. Each request carries its own `seed`.

Log-prob convention: we ask for `logprobs=0` (the sampled token only) and start the engine with
`logprobs_mode="processed_logprobs"`, i.e. after temperature scaling. vLLM's "processed" values
are also taken after top-p/top-k masking, so they equal our convention (full temperature-scaled
distribution, see base.py) only when top_p == 1; with top_p < 1 they are renormalised over the
nucleus. The artifact records which backend produced them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sdar_core.errors import ConfigError, SdarError
from sdar_core.rollout.backends.base import (
    Generation,
    SamplingSettings,
    check_seeds,
    register_backend,
)

__all__ = [
    "VLLMBackend",
    "engine_kwargs",
    "import_vllm",
    "logprob_of",
    "parse_generation",
    "sampling_kwargs",
]

VLLM_HINT = "install the GPU extra (pip install 'sdar[gpu]') on a CUDA machine, or use backend='hf'"


def import_vllm() -> Any:
    """The vllm module, or a ConfigError saying how to get it."""
    try:
        import vllm
    except ImportError as exc:
        raise ConfigError(
            f"the vllm backend needs vLLM, which is not installed: {VLLM_HINT}"
        ) from exc
    return vllm


def engine_kwargs(
    model_dir: str | os.PathLike[str],
    *,
    dtype: str | None,
    seed: int,
    enable_lora: bool,
    trust_remote_code: bool,
    gpu_memory_utilization: float = 0.85,
    max_model_len: int | None = None,
) -> dict[str, Any]:
    """Keyword arguments for `vllm.LLM(...)`: safetensors only, prefix caching on."""
    kwargs: dict[str, Any] = {
        "model": os.fspath(model_dir),
        "dtype": dtype or "auto",
        "seed": seed,
        "load_format": "safetensors",
        "trust_remote_code": trust_remote_code,
        "enable_prefix_caching": True,
        "enable_lora": enable_lora,
        "logprobs_mode": "processed_logprobs",
        "gpu_memory_utilization": gpu_memory_utilization,
    }
    if max_model_len is not None:
        kwargs["max_model_len"] = max_model_len
    return kwargs


def sampling_kwargs(
    settings: SamplingSettings, *, seed: int, stop_token_ids: Sequence[int]
) -> dict[str, Any]:
    """Keyword arguments for one request's `vllm.SamplingParams(...)`."""
    return {
        "n": 1,
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "max_tokens": settings.max_new_tokens,
        "logprobs": 0,  # the sampled token's log-prob only
        "seed": int(seed),
        "stop_token_ids": [int(t) for t in stop_token_ids],
        "skip_special_tokens": False,
    }


def logprob_of(entry: Mapping[int, Any] | None, token_id: int, *, where: str) -> float:
    """The log-prob of `token_id` in one vLLM log-prob entry ({token_id: Logprob})."""
    if entry is None or token_id not in entry:
        raise SdarError(f"vLLM returned no log-prob for token {token_id} at {where}")
    value = entry[token_id]
    return float(getattr(value, "logprob", value))


def parse_generation(request_output: Any) -> Generation:
    """A Generation from one vLLM RequestOutput (its first completion)."""
    completion = request_output.outputs[0]
    token_ids = tuple(int(t) for t in completion.token_ids)
    if completion.logprobs is None or len(completion.logprobs) != len(token_ids):
        raise SdarError(
            "vLLM returned no per-token log-probs: the request must set SamplingParams(logprobs=0)"
        )
    logprobs = tuple(
        logprob_of(entry, token, where=f"response position {i}")
        for i, (entry, token) in enumerate(zip(completion.logprobs, token_ids, strict=True))
    )
    reason = "length" if completion.finish_reason == "length" else "stop"
    return Generation(token_ids, logprobs, reason)


def token_prompts(prompts: Sequence[Sequence[int]]) -> list[dict[str, list[int]]]:
    """vLLM token prompts (TokensPrompt dicts)."""
    return [{"prompt_token_ids": [int(t) for t in p]} for p in prompts]


class VLLMBackend:
    """Sampling with a vLLM engine; one SamplingParams per request (its own seed)."""

    def __init__(
        self, llm: Any, *, settings: SamplingSettings, stop_token_ids: Sequence[int], lora=None
    ) -> None:
        self.llm = llm
        self.settings = settings
        self.stop_token_ids = tuple(int(t) for t in stop_token_ids)
        self.lora_request = lora

    def generate(
        self, prompts: Sequence[Sequence[int]], *, seeds: Sequence[int]
    ) -> list[Generation]:
        check_seeds(prompts, seeds)
        vllm = import_vllm()
        params = [
            vllm.SamplingParams(
                **sampling_kwargs(self.settings, seed=s, stop_token_ids=self.stop_token_ids)
            )
            for s in seeds
        ]
        outputs = self.llm.generate(
            token_prompts(prompts), params, use_tqdm=False, lora_request=self.lora_request
        )
        return [parse_generation(o) for o in outputs]

    def close(self) -> None:
        self.llm = None


def split_lora_checkpoint(model_dir, lora_dir=None) -> tuple[Path, Path | None]:
    """(model folder, adapter folder) for vLLM, which serves an adapter as a LoRA request on its
    base: a LoRA checkpoint given as `model_dir` becomes (its base, itself)."""
    from sdar_core.models import adapter_base

    base = adapter_base(model_dir)
    if base is None:
        return Path(model_dir), None if lora_dir is None else Path(lora_dir)
    if lora_dir is not None:
        raise ConfigError(
            f"{model_dir} is already a LoRA checkpoint (adapter_config.json) and lora_dir="
            f"{lora_dir} names another adapter: pass one of them"
        )
    return base, Path(model_dir)


def make_llm(
    model_dir, *, dtype, seed, lora_dir, trust_remote_code, max_model_len=None
) -> tuple[Any, Any]:
    """A vllm.LLM for `model_dir` and the LoRARequest for `lora_dir` (None without one)."""
    vllm = import_vllm()
    llm = vllm.LLM(
        **engine_kwargs(
            model_dir,
            dtype=dtype,
            seed=seed,
            enable_lora=lora_dir is not None,
            trust_remote_code=trust_remote_code,
            max_model_len=max_model_len,
        )
    )
    lora = None
    if lora_dir is not None:
        from vllm.lora.request import LoRARequest

        lora = LoRARequest("sdar_adapter", 1, os.fspath(lora_dir))
    return llm, lora


@register_backend("vllm")
def make_vllm_backend(
    model_dir: str | os.PathLike[str],
    *,
    settings: SamplingSettings,
    device: str = "cuda",
    dtype: str | None = "bfloat16",
    max_batch_size: int = 64,
    lora_dir: str | os.PathLike[str] | None = None,
    trust_remote_code: bool = False,
    seed: int = 0,
) -> VLLMBackend:
    """A VLLMBackend for `model_dir` (checked like the HF loader: safetensors, no remote code)."""
    from sdar_core.models import load_tokenizer
    from sdar_core.models.loading import check_weights, resolve_source

    del max_batch_size  # vLLM schedules its own batches
    if not str(device).startswith("cuda"):
        raise ConfigError(f"the vllm backend runs on CUDA only, got device={device!r}: {VLLM_HINT}")
    model_dir, lora_dir = split_lora_checkpoint(model_dir, lora_dir)
    check_weights(resolve_source(model_dir, required=(("config.json",),)))
    tokenizer = load_tokenizer(model_dir, trust_remote_code=trust_remote_code)
    llm, lora = make_llm(
        model_dir, dtype=dtype, seed=seed, lora_dir=lora_dir, trust_remote_code=trust_remote_code
    )
    stops = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
    return VLLMBackend(llm, settings=settings, stop_token_ids=sorted(stops), lora=lora)
