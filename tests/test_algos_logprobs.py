"""Chunked token_logprobs against the naive log_softmax + gather: values, gradients, gradcheck."""

import pytest
import torch

from sdar_core.algos import token_logprobs
from sdar_core.errors import ConfigError, SdarError

N, H, V = 37, 16, 97


def _inputs(dtype=torch.float32, seed=0, n=N, ignore=(3, 20)):
    gen = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, H, generator=gen, dtype=dtype)
    weight = torch.randn(V, H, generator=gen, dtype=dtype) * 0.5
    labels = torch.randint(0, V, (n,), generator=gen)
    labels[list(ignore)] = -100
    return hidden, weight, labels


def _naive(hidden, weight, labels, temperature=1.0):
    logits = (hidden @ weight.t()).to(torch.promote_types(hidden.dtype, torch.float32))  # (N, V)
    log_p = torch.log_softmax(logits / temperature, dim=-1)  # (N, V)
    valid = labels != -100
    picked = log_p.gather(1, labels.clamp(min=0)[:, None]).squeeze(1)
    entropy = -(log_p.exp() * log_p).sum(-1)
    zero = torch.zeros_like(picked)
    return torch.where(valid, picked, zero), torch.where(valid, entropy, zero)


def _values_and_grads(fn, hidden, weight, labels, grad_hidden=True, grad_weight=True):
    h = hidden.clone().requires_grad_(grad_hidden)
    w = weight.clone().requires_grad_(grad_weight)
    out = fn(h, w, labels)
    upstream = torch.linspace(-1.0, 2.0, out.numel()).reshape(out.shape).to(out.dtype)
    (out * upstream).sum().backward()
    return out.detach(), h.grad, w.grad


@pytest.mark.parametrize(
    ("chunk_size", "temperature"), [(1, 1.0), (8, 1.0), (37, 0.7), (64, 1.3), (10, 0.7)]
)
def test_matches_naive_float32(chunk_size: int, temperature: float) -> None:
    hidden, weight, labels = _inputs()
    got = _values_and_grads(
        lambda h, w, y: token_logprobs(h, w, y, chunk_size=chunk_size, temperature=temperature),
        hidden, weight, labels,
    )  # fmt: skip
    ref = _values_and_grads(lambda h, w, y: _naive(h, w, y, temperature)[0], hidden, weight, labels)
    for a, b in zip(got, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert got[0][3] == 0.0 and got[0][20] == 0.0  # ignore_index gives log-prob 0
    # ignored rows get no gradient
    assert torch.equal(got[1][3], torch.zeros(H)) and torch.equal(got[1][20], torch.zeros(H))


def test_chunk_size_that_divides_n() -> None:
    hidden, weight, labels = _inputs(n=32)
    got = _values_and_grads(
        lambda h, w, y: token_logprobs(h, w, y, chunk_size=16), hidden, weight, labels
    )
    ref = _values_and_grads(lambda h, w, y: _naive(h, w, y)[0], hidden, weight, labels)
    for a, b in zip(got, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("grad_hidden", "grad_weight"), [(True, False), (False, True)])
def test_gradient_when_only_one_input_requires_it(grad_hidden: bool, grad_weight: bool) -> None:
    hidden, weight, labels = _inputs(seed=1)
    got = _values_and_grads(
        lambda h, w, y: token_logprobs(h, w, y, chunk_size=8, temperature=0.9),
        hidden, weight, labels, grad_hidden, grad_weight,
    )  # fmt: skip
    ref = _values_and_grads(
        lambda h, w, y: _naive(h, w, y, 0.9)[0], hidden, weight, labels, grad_hidden, grad_weight
    )
    for a, b in zip(got, ref, strict=True):
        if b is None:
            assert a is None
        else:
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_gradcheck_float64() -> None:
    gen = torch.Generator().manual_seed(2)
    hidden = torch.randn(6, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(7, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 6, -100, 3, 3, 1])
    fn = lambda h, w: token_logprobs(h, w, labels, chunk_size=4, temperature=0.8)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (hidden, weight))


def test_batched_input_and_entropy() -> None:
    hidden, weight, labels = _inputs(seed=3, n=36, ignore=(5,))
    logprobs, entropy = token_logprobs(
        hidden.reshape(4, 9, H), weight.requires_grad_(), labels.reshape(4, 9), chunk_size=7,
        temperature=1.5, return_entropy=True,
    )  # fmt: skip
    ref_logprobs, ref_entropy = _naive(hidden, weight.detach(), labels, 1.5)
    assert logprobs.shape == entropy.shape == (4, 9)
    torch.testing.assert_close(logprobs.reshape(-1), ref_logprobs, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(entropy.reshape(-1), ref_entropy, rtol=1e-5, atol=1e-6)
    assert logprobs.requires_grad and entropy.requires_grad


def test_entropy_gradient_matches_autograd() -> None:
    # the entropy bonus trains through H: dH/dz = -p (log p + H); float64 against autograd on
    # the naive (N, V) computation, for a mix of log-prob and entropy upstream gradients
    hidden, weight, labels = _inputs(torch.float64, seed=6, n=23, ignore=(4, 17))
    g_lp = torch.randn(23, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    g_h = torch.randn(23, dtype=torch.float64, generator=torch.Generator().manual_seed(2))

    def chunked(h, w, y):
        lp, ent = token_logprobs(h, w, y, chunk_size=5, temperature=0.7, return_entropy=True)
        return (lp * g_lp + ent * g_h).sum()

    def naive(h, w, y):
        lp, ent = _naive(h, w, y, 0.7)
        return (lp * g_lp + ent * g_h).sum()

    got = _values_and_grads(chunked, hidden, weight, labels)
    want = _values_and_grads(naive, hidden, weight, labels)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_float64_values() -> None:
    hidden, weight, labels = _inputs(torch.float64, seed=4)
    got = token_logprobs(hidden, weight, labels, chunk_size=5)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, _naive(hidden, weight, labels)[0], rtol=1e-12, atol=1e-12)


def test_bfloat16_accumulates_in_float32() -> None:
    hidden, weight, labels = _inputs(torch.bfloat16, seed=5)
    got = _values_and_grads(
        lambda h, w, y: token_logprobs(h, w, y, chunk_size=8), hidden, weight, labels
    )
    assert got[0].dtype == torch.float32
    assert got[1].dtype == got[2].dtype == torch.bfloat16
    # Reference: the same bf16 inputs in float32 all the way; bf16 logits round to ~3 digits.
    ref = _values_and_grads(
        lambda h, w, y: _naive(h, w, y)[0], hidden.float(), weight.float(), labels
    )
    torch.testing.assert_close(got[0], ref[0], rtol=0, atol=0.05)
    for a, b in zip(got[1:], ref[1:], strict=True):
        torch.testing.assert_close(a.float(), b, rtol=0.02, atol=0.02)


def test_rejects_bad_input() -> None:
    hidden, weight, labels = _inputs()
    with pytest.raises(SdarError, match="labels must have shape"):
        token_logprobs(hidden, weight, labels[:-1])
    with pytest.raises(SdarError, match=r"labels must be in \[0, 97\)"):
        token_logprobs(hidden, weight, torch.full((N,), V))
    with pytest.raises(SdarError, match="share a floating dtype"):
        token_logprobs(hidden, weight.double(), labels)
    with pytest.raises(SdarError, match=r"lm_head_weight \(V, H\)"):
        token_logprobs(hidden, weight[:, :3], labels)
    with pytest.raises(ConfigError, match="chunk_size"):
        token_logprobs(hidden, weight, labels, chunk_size=0)
    with pytest.raises(ConfigError, match="temperature"):
        token_logprobs(hidden, weight, labels, temperature=0.0)


def test_auto_chunk_size_bounds_the_logits_buffer() -> None:
    from sdar_core.algos.logprobs import CHUNK_BYTES, auto_chunk_size

    # Qwen2.5's head: 128 MiB / (4 bytes * 151936) = 220.8 -> 220 rows of float32 logits.
    rows = auto_chunk_size(151936)
    assert rows == 220
    assert rows * 151936 * 4 <= CHUNK_BYTES < (rows + 1) * 151936 * 4
    # a tiny vocabulary processes a whole realistic batch in one chunk
    assert auto_chunk_size(2232) >= 8192
