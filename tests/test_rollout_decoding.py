"""Our decoding loop against transformers' own `generate` on the tiny model: token for token
under greedy decoding (batched, left-padded, with and without row-chunked prefill), log-probs
that do not depend on the prefill's chunking, and seeded sampling that stays reproducible and
batch-independent when the prefill is chunked."""

from __future__ import annotations

import pytest
import torch

from sdar_core.errors import ConfigError
from sdar_core.models import load_model
from sdar_core.rollout import SamplingSettings
from sdar_core.rollout.backends.hf import HFBackend, decode, left_pad

pytestmark = pytest.mark.transformers
NEW = 16


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load_model(tiny_model_dir, dtype="float32")


@pytest.fixture(scope="module")
def prompts(model):
    # random ids of different lengths: left padding matters, and greedy paths do not tie
    g = torch.Generator().manual_seed(3)
    vocab = model.config.vocab_size
    return [torch.randint(5, vocab, (n,), generator=g).tolist() for n in (23, 7, 40, 15, 31)]


def _greedy(logits: torch.Tensor):
    logprobs = torch.log_softmax(logits, -1)  # (B, V)
    chosen = logprobs.argmax(-1)  # (B,)
    return chosen, logprobs.gather(-1, chosen[:, None]).squeeze(-1)


def _ours(model, prompts, prefill_tokens):
    return decode(
        model, prompts, pick=_greedy, max_new_tokens=NEW, stop_token_ids=[-1],
        pad_token_id=0, prefill_tokens=prefill_tokens,
    )  # fmt: skip


@pytest.mark.parametrize("prefill_tokens", [None, 40, 1])  # one forward; 1 row; 1 row (floor)
def test_greedy_decoding_equals_generate_token_for_token(model, prompts, prefill_tokens):
    ids, mask, _ = left_pad(prompts, pad_id=0, device="cpu")
    reference = model.generate(
        input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=NEW,
        min_new_tokens=NEW, pad_token_id=0,
    )[:, ids.shape[1] :].tolist()  # fmt: skip
    tokens, _ = _ours(model, prompts, prefill_tokens)
    assert tokens == reference


def test_chunked_prefill_keeps_the_logprobs(model, prompts):
    _, whole = _ours(model, prompts, None)
    _, chunked = _ours(model, prompts, 90)  # 2 rows per chunk of 40 padded tokens
    torch.testing.assert_close(torch.tensor(chunked), torch.tensor(whole), rtol=1e-5, atol=1e-5)


def test_sampling_with_chunked_prefill_stays_seeded(model, prompts):
    settings = SamplingSettings(temperature=1.0, top_p=0.95, max_new_tokens=NEW)
    backend = HFBackend(model, settings=settings, stop_token_ids=[2], pad_token_id=0)
    chunked = HFBackend(
        model, settings=settings, stop_token_ids=[2], pad_token_id=0, prefill_tokens=1
    )
    seeds = [11, 12, 13, 14, 15]
    first = [g.token_ids for g in chunked.generate(prompts, seeds=seeds)]
    assert [g.token_ids for g in chunked.generate(prompts, seeds=seeds)] == first
    assert [g.token_ids for g in backend.generate(prompts, seeds=seeds)] == first
    alone = chunked.generate([prompts[2]], seeds=[13])[0].token_ids
    assert alone == first[2]
    assert [g.token_ids for g in chunked.generate(prompts, seeds=[1, 2, 3, 4, 5])] != first


def test_bad_prefill_budget_is_a_clear_error(model):
    settings = SamplingSettings(temperature=1.0, top_p=1.0, max_new_tokens=2)
    with pytest.raises(ConfigError, match="prefill_tokens must be >= 1"):
        HFBackend(model, settings=settings, stop_token_ids=[2], pad_token_id=0, prefill_tokens=0)


def test_the_sampler_draws_tokens_with_their_probabilities():
    """20,000 rows with the same distribution, one seeded generator each: every token's share is
    within 4 standard errors of its probability, and a token of probability 0 never comes."""
    from sdar_core.rollout.backends.hf import sample_top_p

    probs = torch.tensor([0.5, 0.0, 0.25, 0.15, 0.1, 0.0])
    rows = 20_000
    gens = [torch.Generator().manual_seed(i) for i in range(rows)]
    drawn = sample_top_p(probs.log().expand(rows, -1), gens, top_p=1.0)
    shares = torch.bincount(drawn, minlength=len(probs)).double() / rows
    stderr = (probs.double() * (1 - probs.double()) / rows).sqrt()
    assert bool(((shares - probs.double()).abs() <= 4 * stderr + 1e-12).all()), shares
    assert shares[1] == 0 and shares[5] == 0
