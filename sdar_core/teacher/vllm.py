"""Teacher scoring with vLLM (GPU): prompt log-probs of the response positions, prefix caching on.

Each teacher sequence (skills + conversation + the student's response) is sent as a token prompt
with `SamplingParams(max_tokens=1, prompt_logprobs=0)`: vLLM returns, per prompt position, a dict
{token_id: Logprob} holding the prompt token's log-prob (position 0 has None). We keep positions
response_start … end. The samples of one group share their skills block and often their whole
prompt, so prefix caching (`enable_prefix_caching=True`, set by `engine_kwargs`) reuses it.

vLLM computes prompt log-probs from the raw logits (temperature 1), so this path refuses
trajectories sampled at another temperature (use the hf scorer for those).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sdar_core.errors import ConfigError, SdarError
from sdar_core.rollout.backends.vllm import (
    import_vllm,
    logprob_of,
    make_llm,
    split_lora_checkpoint,
    token_prompts,
)

__all__ = ["parse_prompt_logprobs", "prompt_logprob_kwargs", "vllm_response_logprobs"]


def prompt_logprob_kwargs() -> dict[str, Any]:
    """Keyword arguments for the scoring `vllm.SamplingParams(...)`."""
    return {"max_tokens": 1, "prompt_logprobs": 0, "temperature": 1.0, "detokenize": False}


def parse_prompt_logprobs(
    request_output: Any, input_ids: Sequence[int], response_start: int
) -> list[float]:
    """Log-probs of input_ids[response_start:] from one RequestOutput's prompt_logprobs."""
    entries = request_output.prompt_logprobs
    if entries is None or len(entries) != len(input_ids):
        got = None if entries is None else len(entries)
        raise SdarError(
            f"vLLM returned {got} prompt log-prob entries for a {len(input_ids)}-token prompt: "
            "the request must set SamplingParams(prompt_logprobs=0)"
        )
    if response_start < 1:
        raise SdarError("a response cannot start at position 0: it needs a prompt before it")
    return [
        logprob_of(entries[t], int(input_ids[t]), where=f"prompt position {t}")
        for t in range(response_start, len(input_ids))
    ]


def vllm_response_logprobs(
    model_dir,
    sequences: Sequence[tuple[Sequence[int], int]],
    *,
    temperature: float,
    dtype,
    trust_remote_code: bool,
) -> list[list[float]]:
    """`forward.response_logprobs` on a vLLM engine (see the module docstring)."""
    if temperature != 1.0:
        raise ConfigError(
            f"the vllm teacher scores at temperature 1, but the rollouts were sampled at "
            f"temperature {temperature}: use TeacherConfig(backend='hf')"
        )
    vllm = import_vllm()
    model_dir, lora_dir = split_lora_checkpoint(model_dir)  # the same weights as the student
    llm, lora = make_llm(
        model_dir, dtype=dtype, seed=0, lora_dir=lora_dir, trust_remote_code=trust_remote_code
    )
    params = vllm.SamplingParams(**prompt_logprob_kwargs())
    prompts = token_prompts([ids for ids, _ in sequences])
    outputs = llm.generate(prompts, params, use_tqdm=False, lora_request=lora)
    return [
        parse_prompt_logprobs(out, ids, start)
        for out, (ids, start) in zip(outputs, sequences, strict=True)
    ]
