"""Per-token log-probs (and entropy) of labels under an LM head without (N, V) logits in memory.

`token_logprobs(hidden, lm_head_weight, labels)` computes log softmax(hidden @ W.T / temperature)
at `labels`, row chunk by row chunk, inside a custom autograd Function whose backward recomputes
each chunk's logits. Neither pass holds more than one (chunk_size, V) logits buffer, where the naive
`log_softmax(hidden @ W.T).gather(...)` holds several (N, V) tensors (logits, log-softmax, and their
gradients): 4 x 2.3 GiB for 4096 tokens at Qwen's V = 151936 in float32.

Gradient, per row with z = h W^T / τ, p = softmax(z), y the label and g the upstream gradient:
    dL/dz = g (onehot(y) - p),   dL/dh = (dL/dz) W / τ,   dL/dW = (dL/dz)^T h / τ
computed in place in the chunk buffer (exp, scale, add g at the label), then two matmuls. The
backward costs one more matmul than autograd's (the logits are recomputed): that is the price of
the memory saving.

Precision: logits and logsumexp are float32 for float32/bfloat16/float16 inputs and float64 for
float64 inputs; outputs use that dtype. For low-precision inputs the logits matmul runs in the input
dtype (as the model's own head would) and the weight gradient is accumulated in float32.
Labels equal to `ignore_index` give log-prob 0, entropy 0 and no gradient.

Entropy (`return_entropy=True`): H = logsumexp(z) - Σ p z per row, with gradient (the entropy
bonus of the RL loss trains through it): dH/dz = -p ⊙ (log p + H), added to the same chunk
buffer in the backward pass, so the bonus costs one more (chunk_size, V) buffer, not (N, V).
"""

import torch

from sdar_core.errors import ConfigError, SdarError

# Byte budget of one chunk's logits buffer. At V = 151936 this gives 220 rows, which keeps the
# chunked forward + backward under 1/8 of the naive peak (benchmarks/logprobs.py); throughput is
# flat from ~256 to 2048 rows because the per-chunk matmuls stay large.
CHUNK_BYTES = 128 * 2**20

_SUPPORTED = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def token_logprobs(
    hidden: torch.Tensor,
    lm_head_weight: torch.Tensor,
    labels: torch.Tensor,
    *,
    temperature: float = 1.0,
    chunk_size: int | None = None,
    return_entropy: bool = False,
    ignore_index: int = -100,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Log-prob of each label: hidden (N, H) or (B, T, H), weight (V, H), labels (N,) or (B, T).

    Returns logprobs shaped like `labels`, plus the per-token entropy if `return_entropy`.
    Memory beyond inputs and gradients is one (chunk_size, V) buffer in the compute dtype.
    `chunk_size=None` picks the rows so that buffer stays near CHUNK_BYTES (128 MiB: 220 rows at
    V = 151936 in float32; the whole batch for a tiny vocabulary); benchmarks/logprobs.py measures
    the memory/time trade-off of other sizes.
    """
    if chunk_size is None:
        chunk_size = auto_chunk_size(lm_head_weight.shape[0])
    _validate(hidden, lm_head_weight, labels, temperature=temperature, chunk_size=chunk_size)
    flat_hidden = hidden.reshape(-1, hidden.shape[-1])  # (N, H)
    flat_labels = labels.reshape(-1)  # (N,)
    _check_label_range(flat_labels, lm_head_weight.shape[0], ignore_index)
    logprobs, entropy = _ChunkedTokenLogprobs.apply(
        flat_hidden,
        lm_head_weight,
        flat_labels,
        temperature,
        chunk_size,
        ignore_index,
        return_entropy,
    )
    logprobs = logprobs.reshape(labels.shape)
    if return_entropy:
        return logprobs, entropy.reshape(labels.shape)
    return logprobs


class _ChunkedTokenLogprobs(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, labels, temperature, chunk_size, ignore_index, with_entropy):
        compute = _compute_dtype(hidden.dtype)
        n_rows = hidden.shape[0]
        valid = labels != ignore_index  # (N,)
        safe_labels = torch.where(valid, labels, torch.zeros_like(labels)).long()  # (N,)
        lse = torch.empty(n_rows, dtype=compute, device=hidden.device)
        target = torch.empty_like(lse)
        entropy = torch.zeros(n_rows if with_entropy else 0, dtype=compute, device=hidden.device)
        buffer = _logits_buffer(hidden, weight, chunk_size, compute)
        for start in range(0, n_rows, chunk_size):
            rows = slice(start, min(start + chunk_size, n_rows))
            logits = _chunk_logits(hidden[rows], weight, temperature, buffer)  # (C, V)
            target[rows] = logits.gather(1, safe_labels[rows, None]).squeeze(1)
            row_max = logits.amax(dim=1, keepdim=True)  # (C, 1)
            exp_shifted = logits.sub_(row_max).exp_()  # (C, V) in place: exp(z - max)
            sum_exp = exp_shifted.sum(dim=1)  # (C,)
            lse[rows] = row_max.squeeze(1) + sum_exp.log()
            if with_entropy:  # H = log S - sum(e log e) / S with e = exp(z - max), S = sum(e)
                e_log_e = torch.special.xlogy(exp_shifted, exp_shifted).sum(dim=1)  # (C,)
                entropy[rows] = sum_exp.log() - e_log_e / sum_exp
        zero = torch.zeros_like(lse)
        logprobs = torch.where(valid, target - lse, zero)  # (N,)
        entropy = torch.where(valid, entropy, zero) if with_entropy else entropy
        ctx.save_for_backward(hidden, weight, safe_labels, valid, lse, entropy)
        ctx.temperature, ctx.chunk_size = temperature, chunk_size
        if not with_entropy:
            ctx.mark_non_differentiable(entropy)
        return logprobs, entropy

    @staticmethod
    def backward(ctx, grad_logprobs, grad_entropy):
        hidden, weight, labels, valid, lse, entropy = ctx.saved_tensors
        need_hidden, need_weight = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if not (need_hidden or need_weight):
            return (None,) * 7
        temperature, chunk_size = ctx.temperature, ctx.chunk_size
        compute = lse.dtype
        if grad_logprobs is None:
            grad_logprobs = torch.zeros_like(lse)
        # g / τ per row; 0 for ignored labels, so their rows contribute nothing.
        row_grad = torch.where(valid, grad_logprobs.to(compute), 0.0) / temperature  # (N,)
        with_entropy = grad_entropy is not None and entropy.numel() > 0
        if with_entropy:
            ent_grad = torch.where(valid, grad_entropy.to(compute), 0.0) / temperature  # (N,)
        grad_hidden = torch.empty_like(hidden) if need_hidden else None
        grad_weight = (
            torch.zeros(weight.shape, dtype=compute, device=weight.device) if need_weight else None
        )
        buffer = _logits_buffer(hidden, weight, chunk_size, compute)
        for start in range(0, hidden.shape[0], chunk_size):
            rows = slice(start, min(start + chunk_size, hidden.shape[0]))
            dz = _chunk_logits(hidden[rows], weight, temperature, buffer)  # (C, V) z
            dz.sub_(lse[rows, None])  # (C, V) log p
            if with_entropy:  # dH/dz = -p (log p + H), scaled by the entropy's g / τ
                p = dz.exp()  # (C, V)
                dz.add_(entropy[rows, None]).mul_(-ent_grad[rows, None])  # -gH (log p + H) / τ
                dz.sub_(row_grad[rows, None]).mul_(p)  # -gH p (log p + H) / τ - g p / τ
                del p
            else:
                dz.exp_().mul_(-row_grad[rows, None])  # (C, V) -g p / τ
            dz.scatter_add_(1, labels[rows, None], row_grad[rows, None])  # g (onehot - p) / τ
            if need_hidden:
                _mm_into(grad_hidden[rows], dz.to(weight.dtype), weight)  # (C, H)
            if need_weight:
                grad_weight.addmm_(dz.t(), hidden[rows].to(compute))  # (V, H)
        if need_weight:
            grad_weight = grad_weight.to(weight.dtype)
        return grad_hidden, grad_weight, None, None, None, None, None


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _logits_buffer(hidden, weight, chunk_size, compute) -> torch.Tensor:
    rows = min(chunk_size, hidden.shape[0])
    return torch.empty(rows, weight.shape[0], dtype=compute, device=hidden.device)


def _chunk_logits(hidden_chunk, weight, temperature, buffer) -> torch.Tensor:
    """z = hidden_chunk @ weight.T / τ written into the first rows of `buffer` (C, V)."""
    logits = buffer[: hidden_chunk.shape[0]]
    _mm_into(logits, hidden_chunk, weight.t())
    if temperature != 1.0:
        logits.mul_(1.0 / temperature)
    return logits


def _mm_into(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
    """out = a @ b without a temporary when dtypes agree (else one matmul-sized temporary)."""
    if out.dtype == a.dtype:
        torch.mm(a, b, out=out)
    else:
        out.copy_(torch.mm(a, b))


def auto_chunk_size(vocab_size: int) -> int:
    """Rows per chunk so that one float32 (rows, vocab_size) logits buffer is ~CHUNK_BYTES."""
    return max(16, CHUNK_BYTES // (4 * vocab_size))


def _validate(hidden, weight, labels, *, temperature: float, chunk_size: int) -> None:
    if hidden.dim() not in (2, 3) or weight.dim() != 2 or hidden.shape[-1] != weight.shape[1]:
        raise SdarError(
            f"token_logprobs needs hidden (N, H) or (B, T, H) and lm_head_weight (V, H), got "
            f"{tuple(hidden.shape)} and {tuple(weight.shape)}"
        )
    if tuple(labels.shape) != tuple(hidden.shape[:-1]):
        raise SdarError(
            f"labels must have shape {tuple(hidden.shape[:-1])} (hidden without its last dim), "
            f"got {tuple(labels.shape)}"
        )
    if hidden.dtype not in _SUPPORTED or hidden.dtype != weight.dtype:
        raise SdarError(
            f"hidden and lm_head_weight must share a floating dtype among {_SUPPORTED}, got "
            f"{hidden.dtype} and {weight.dtype}: cast one to the other"
        )
    if labels.dtype not in (torch.int64, torch.int32):
        raise SdarError(f"labels must be an integer tensor, got {labels.dtype}")
    if not temperature > 0:
        raise ConfigError(f"temperature must be > 0, got {temperature}: use 1.0")
    if chunk_size < 1:
        raise ConfigError(
            f"chunk_size must be >= 1, got {chunk_size}: pass None to size chunks automatically"
        )


def _check_label_range(labels: torch.Tensor, vocab: int, ignore_index: int) -> None:
    kept = labels[labels != ignore_index]
    if kept.numel() and (int(kept.min()) < 0 or int(kept.max()) >= vocab):
        raise SdarError(
            f"labels must be in [0, {vocab}) or equal ignore_index={ignore_index}, got values "
            f"in [{int(kept.min())}, {int(kept.max())}]"
        )
