"""Models: tiny offline Qwen2 checkpoints with a locally trained tokenizer, and one loader.

`build_tiny_model` writes a Hugging Face checkpoint (Qwen2 architecture, byte-level BPE trained
with Qwen2's exact pipeline, Qwen2.5's ChatML template) so everything runs with no model hub;
`load_model` / `load_tokenizer` load it, or a hub id where a hub is reachable, through one path.
"""

from sdar_core.models.corpus import (
    default_corpus,
    get_corpus_source,
    list_corpus_sources,
    register_corpus_source,
)
from sdar_core.models.loading import adapter_base, load_model, load_tokenizer, merge_adapter
from sdar_core.models.tiny import SDAR_MODEL_FILE, TinyModelConfig, build_tiny_model
from sdar_core.models.tokenizer import (
    ENDOFTEXT,
    IM_END,
    IM_START,
    QWEN2_PRETOKENIZE_REGEX,
    SPECIAL_TOKENS,
    chatml_template,
    train_tokenizer,
)

__all__ = [
    "ENDOFTEXT",
    "IM_END",
    "IM_START",
    "QWEN2_PRETOKENIZE_REGEX",
    "SDAR_MODEL_FILE",
    "SPECIAL_TOKENS",
    "TinyModelConfig",
    "build_tiny_model",
    "chatml_template",
    "default_corpus",
    "get_corpus_source",
    "list_corpus_sources",
    "adapter_base",
    "load_model",
    "load_tokenizer",
    "merge_adapter",
    "register_corpus_source",
    "train_tokenizer",
]
