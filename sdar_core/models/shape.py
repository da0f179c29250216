"""`TinyModelConfig`: the shape of a tiny model, importable without torch or transformers (the
run settings carry it; `tiny.py` builds the model)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, model_validator

from sdar_core.errors import ConfigError
from sdar_core.limits import Count

__all__ = ["MIN_VOCAB_SIZE", "TinyModelConfig"]

MIN_VOCAB_SIZE = 256 + 3  # byte tokens + special tokens, as tokenizer.py (a test checks)


class TinyModelConfig(BaseModel):
    """Shape and seed of a tiny Qwen2 model; defaults build in about a second on one CPU core."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    vocab_size: Count = 4096  # BPE target: bytes + special tokens + merges
    hidden_size: Count = 128
    intermediate_size: Count = 256
    num_hidden_layers: Count = 2
    num_attention_heads: Count = 4
    num_key_value_heads: Count = 2
    max_position_embeddings: Count = 4096
    tie_word_embeddings: bool = True  # as Qwen2.5-0.5B/3B
    rope_theta: float = 1_000_000.0  # as Qwen2.5
    seed: Count = 0

    @model_validator(mode="after")
    def _check(self) -> TinyModelConfig:
        if self.vocab_size < MIN_VOCAB_SIZE:
            raise ConfigError(
                f"vocab_size must be >= {MIN_VOCAB_SIZE} (256 byte tokens + 3 special tokens), "
                f"got {self.vocab_size}: set vocab_size to 4096"
            )
        for name in (
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "max_position_embeddings",
        ):
            if getattr(self, name) < 1:
                default = type(self).model_fields[name].default
                raise ConfigError(
                    f"{name} must be >= 1, got {getattr(self, name)}: set {name} to {default}"
                )
        self._check_heads()
        if self.rope_theta <= 0:
            raise ConfigError(f"rope_theta must be > 0, got {self.rope_theta}: set it to 1e6")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}: set seed to 0")
        return self

    def _check_heads(self) -> None:
        heads, kv_heads = self.num_attention_heads, self.num_key_value_heads
        if self.hidden_size % heads:
            fixed = max(heads, self.hidden_size // heads * heads)
            raise ConfigError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({heads}): set hidden_size to {fixed}"
            )
        if (self.hidden_size // heads) % 2:
            raise ConfigError(
                f"head size hidden_size / num_attention_heads = {self.hidden_size // heads} must "
                f"be even for rotary embeddings: set hidden_size to {2 * self.hidden_size}"
            )
        if heads % kv_heads:
            raise ConfigError(
                f"num_attention_heads ({heads}) must be a multiple of num_key_value_heads "
                f"({kv_heads}) for grouped-query attention: set num_key_value_heads to 1 or {heads}"
            )
