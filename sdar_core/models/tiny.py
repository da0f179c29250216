"""Build a tiny, randomly initialised Qwen2 causal LM with a locally trained tokenizer.

No model hub is reachable offline, so tests and the embedded default pipeline run start from a
model built here: `transformers.Qwen2ForCausalLM` from a small `Qwen2Config`, seeded initial
weights, the BPE tokenizer of `tokenizer.py` trained on the procedural corpus of `corpus.py` (plus
any extra texts), Qwen2.5's ChatML template and a generation config that stops at `<|im_end|>` or
`<|endoftext|>`. The folder is a normal Hugging Face checkpoint (config.json, model.safetensors,
tokenizer.json, chat template), reloadable with the Auto classes or `load_model`/`load_tokenizer`.

Departures from Qwen2.5: the embedding matrix has exactly len(tokenizer) rows (Qwen pads its
vocabulary to a multiple of 128; unused rows would let an untrained model emit ids that decode to
nothing), and `bos_token_id` is None because the tokenizer never adds one.
The build is deterministic: the same config and texts give identical weights and vocabulary.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import torch
from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

from sdar_core.errors import ArtifactError, ConfigError
from sdar_core.models.checksums import write_checksums
from sdar_core.models.corpus import DEFAULT_N_DOCUMENTS, default_corpus
from sdar_core.models.shape import TinyModelConfig
from sdar_core.models.tokenizer import ENDOFTEXT, IM_END, train_tokenizer

SDAR_MODEL_FILE = "sdar_model.json"


def qwen2_config(
    config: TinyModelConfig, *, vocab_size: int, pad_id: int, eos_id: int
) -> Qwen2Config:
    """The transformers Qwen2Config for `config` with the trained tokenizer's size and ids."""
    return Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_key_value_heads,
        max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=config.tie_word_embeddings,
        rope_parameters={"rope_type": "default", "rope_theta": config.rope_theta},
        pad_token_id=pad_id,
        eos_token_id=eos_id,
        bos_token_id=None,
    )


def init_tiny_model(hf_config: Qwen2Config, *, seed: int) -> Qwen2ForCausalLM:
    """A float32 Qwen2ForCausalLM with weights drawn from `seed`; the global RNG is untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(hf_config)
    return model.to(torch.float32).eval()


def build_tiny_model(
    out_dir: str | os.PathLike[str],
    *,
    config: TinyModelConfig = TinyModelConfig(),  # noqa: B008 - frozen, so sharing is safe
    texts: Iterable[str] | None = None,
) -> Path:
    """Train the tokenizer, initialise the model and save both to `out_dir`; return its path.

    `texts` are added to the bundled corpus for tokenizer training (e.g. expert trajectories).
    `out_dir` must not exist or be an empty directory: the checkpoint is written to a temporary
    sibling directory and renamed into place, so readers never see a half-written model.
    """
    if isinstance(texts, str):
        raise ConfigError("texts must be an iterable of strings, not one string: wrap it in a list")
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ArtifactError(
            f"cannot build a model at {out}: it exists and is not an empty directory; "
            "remove it or choose another out_dir"
        )
    corpus = default_corpus() + list(texts or ())
    tokenizer = train_tokenizer(
        corpus, vocab_size=config.vocab_size, model_max_length=config.max_position_embeddings
    )
    pad_id, eos_id = tokenizer.convert_tokens_to_ids([ENDOFTEXT, IM_END])
    hf_config = qwen2_config(config, vocab_size=len(tokenizer), pad_id=pad_id, eos_id=eos_id)
    model = init_tiny_model(hf_config, seed=config.seed)
    model.generation_config = GenerationConfig(
        eos_token_id=[eos_id, pad_id], pad_token_id=pad_id, do_sample=False
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        _save_quietly(model, tmp)  # one shard: its progress bar is noise
        tokenizer.save_pretrained(tmp)
        _write_json(tmp / SDAR_MODEL_FILE, _build_record(config, corpus, len(tokenizer)))
        write_checksums(tmp)
        os.replace(tmp, out)  # atomic; replaces an empty directory on POSIX
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _save_quietly(model, folder: Path) -> None:
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model.save_pretrained(folder)
    finally:
        if shown:
            hf_logging.enable_progress_bar()


def _build_record(config: TinyModelConfig, corpus: list[str], vocab_size: int) -> dict:
    digest = hashlib.sha256("\x00".join(corpus).encode("utf-8")).hexdigest()
    return {
        "kind": "tiny_qwen2",
        "config": config.model_dump(),
        "tokenizer": {
            "trained_vocab_size": vocab_size,
            "corpus_documents": len(corpus),
            "bundled_documents": DEFAULT_N_DOCUMENTS,
            "corpus_sha256": digest,
        },
    }


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
