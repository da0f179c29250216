"""The trained policy: loading (full weights or a LoRA adapter through peft), the log-prob head,
architecture checks, and atomic checkpoints.

`PolicyHead` wraps a causal LM so that one `forward(batch)` returns the (B, T) log-probs of the
response tokens: the decoder body runs to hidden states, the hidden states that predict response
tokens are gathered, and only those go through `sdar_core.algos.token_logprobs` with the LM head's
weight (no (B, L, V) logits). Wrapping the whole computation in one module lets DeepSpeed ZeRO-3
gather the LM-head weight, which is used outside its own module's forward (it is registered as an
external parameter of the wrapper).

LoRA: `peft.get_peft_model` with `LoraConfig(target_modules=q/k/v/o/gate/up/down)`; a directory
holding `adapter_config.json` (its checksums verified) is loaded as base model + adapter and
training continues on it. The reference policy of a LoRA run is the same module with the adapter
disabled (`reference_mode`): the adapter's base, which is the run's start model because a LoRA
warm start is merged into full weights (`save_merged_checkpoint`) and RL trains a fresh adapter
on them. Each update writes only the adapter, naming that base, so no round copies the base.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from sdar_core.algos import token_logprobs
from sdar_core.errors import ArtifactError, ConfigError
from sdar_core.models.checksums import write_checksums
from sdar_core.models.loading import ADAPTER_CONFIG, check_adapter
from sdar_core.train.batch import IGNORE, MicroBatch
from sdar_core.train.config import TrainConfig

__all__ = [
    "ADAPTER_CONFIG",
    "PolicyHead",
    "add_lora",
    "check_same_architecture",
    "load_policy",
    "reference_mode",
    "save_checkpoint",
    "save_merged_checkpoint",
]

_ARCH_FIELDS = ("model_type", "vocab_size", "hidden_size", "num_hidden_layers")


class PolicyHead(torch.nn.Module):
    """Causal LM → per-token log-probs of a micro-batch's response tokens (module docstring)."""

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        temperature: float,
        chunk_size: int | None,
        with_entropy: bool = False,
    ):
        super().__init__()
        self.model = model
        self.temperature = temperature
        self.chunk_size = chunk_size
        self.with_entropy = with_entropy  # forward returns (logprobs, entropy), both (B, T)

    def causal_lm(self) -> torch.nn.Module:
        """The transformers model inside (peft's wrapper removed; LoRA layers stay active)."""
        inner = self.model
        return inner.get_base_model() if hasattr(inner, "get_base_model") else inner

    def forward(self, batch: MicroBatch) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        lm = self.causal_lm()
        hidden = lm.model(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask
        ).last_hidden_state  # (B, L, H)
        rows = torch.arange(hidden.shape[0], device=hidden.device)[:, None]  # (B, 1)
        predicting = hidden[rows, batch.positions]  # (B, T, H)
        weight = lm.get_output_embeddings().weight  # (V, H)
        return token_logprobs(
            predicting,
            weight,
            batch.labels,
            temperature=self.temperature,
            chunk_size=self.chunk_size,
            ignore_index=IGNORE,
            return_entropy=self.with_entropy,
        )  # (B, T), or ((B, T), (B, T)) with the entropy


@contextlib.contextmanager
def reference_mode(head: PolicyHead) -> Iterator[None]:
    """With a LoRA policy: the adapter disabled (the frozen base). Otherwise: no change."""
    if hasattr(head.model, "disable_adapter"):
        with head.model.disable_adapter():
            yield
    else:
        yield


def model_config_of(model_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """config.json of a checkpoint (for an adapter: of its base model)."""
    path = Path(model_dir)
    if (path / ADAPTER_CONFIG).is_file():
        path = Path(json.loads((path / ADAPTER_CONFIG).read_text())["base_model_name_or_path"])
    if not (path / "config.json").is_file():
        raise ArtifactError(
            f"{model_dir} has no config.json: pass a checkpoint saved with save_pretrained"
        )
    return json.loads((path / "config.json").read_text())


def check_same_architecture(policy_dir, other_dir, *, what: str) -> None:
    """Raise ArtifactError naming the field when `other_dir` is not the policy's architecture."""
    mine, theirs = model_config_of(policy_dir), model_config_of(other_dir)
    for name in _ARCH_FIELDS:
        if mine.get(name) != theirs.get(name):
            raise ArtifactError(
                f"{what} {other_dir} has another architecture than the policy {policy_dir}: "
                f"{name} is {theirs.get(name)!r} there and {mine.get(name)!r} here; pass a "
                "checkpoint of the same model (e.g. the policy's starting checkpoint)"
            )


def load_policy(model_dir: str | os.PathLike[str], config: TrainConfig) -> torch.nn.Module:
    """The model to train: full weights, or base + (new or saved) LoRA adapter."""
    from sdar_core.models import load_model

    path = Path(model_dir)
    is_adapter = (path / ADAPTER_CONFIG).is_file()
    if is_adapter and not config.lora:
        raise ConfigError(
            f"{path} holds a LoRA adapter: set lora=True to keep training it, or merge it first"
        )
    base_dir = model_config_dir(path)
    model = load_model(
        base_dir,
        dtype=config.dtype,
        device=config.device_for_rank(),
        trust_remote_code=config.trust_remote_code,
    )
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    if not config.lora:
        return model
    import peft

    if is_adapter:
        check_adapter(path)  # its checksums, as load_model checks a full checkpoint's
        return peft.PeftModel.from_pretrained(model, path, is_trainable=True)
    return add_lora(model, config)


def add_lora(model: torch.nn.Module, config: TrainConfig) -> torch.nn.Module:
    """`model` wrapped with a fresh LoRA adapter of the config's rank, alpha, dropout and
    targets (the base weights frozen)."""
    import peft

    lora = peft.LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.lora_targets),
        task_type="CAUSAL_LM",
    )
    return peft.get_peft_model(model, lora)


def model_config_dir(path: Path) -> Path:
    """The directory holding the full weights: the path itself, or an adapter's base model."""
    if (path / ADAPTER_CONFIG).is_file():
        return Path(json.loads((path / ADAPTER_CONFIG).read_text())["base_model_name_or_path"])
    return path


def _without_timings(value: Any) -> Any:
    """`value` without its wall-clock figures (keys ending in "seconds" or "_per_s"): they
    describe this process, not the checkpoint, and would make two checkpoints of the same
    settings differ in bytes; the stage logs them to MLflow from the returned metrics."""
    if isinstance(value, dict):
        return {
            k: _without_timings(v)
            for k, v in value.items()
            if not (k.endswith("seconds") or k.endswith("_per_s"))
        }
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def _record_dtype(path: Path, dtype: torch.dtype) -> None:
    """Make config.json name the dtype the weights were saved in (vLLM's dtype="auto" reads it)."""
    config = json.loads(path.read_text())
    name = str(dtype).removeprefix("torch.")
    for key in ("dtype", "torch_dtype"):
        if key in config or key == "dtype":
            config[key] = name
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def save_checkpoint(
    model: torch.nn.Module,
    state_dict: dict[str, torch.Tensor] | None,
    source_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    metrics: dict[str, Any],
    *,
    extra_dirs: dict[str, Path] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write weights (safetensors; only the adapter for LoRA), tokenizer and metrics.json (no
    timings: the same settings give the same bytes) to a temporary sibling of `out_dir`, move
    each of `extra_dirs` (name -> a finished folder, e.g. the trainer state) into it, record the
    checksums of every file, then rename it into place. With `dtype`, the weights are saved in
    that dtype (config.json says so): the module is cast in place, so the caller must be done
    with it (the update saves its full-precision weights in the trainer state first)."""
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ArtifactError(f"{out} already exists and is not empty: choose a new out_dir")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        if dtype is not None and state_dict is None:
            model.to(dtype)  # tied weights stay tied, and config.json records the dtype
        elif dtype is not None:
            state_dict = {k: v.to(dtype) for k, v in state_dict.items()}
        kwargs = {} if state_dict is None else {"state_dict": state_dict}
        model.save_pretrained(tmp, safe_serialization=True, **kwargs)
        if dtype is not None and (tmp / "config.json").is_file():  # (an adapter has none)
            _record_dtype(tmp / "config.json", dtype)
        tokenizer_dir = model_config_dir(Path(source_dir))
        for item in tokenizer_dir.iterdir():
            if item.name.startswith(("tokenizer", "chat_template", "special_tokens", "vocab")):
                shutil.copy2(item, tmp / item.name)
        recorded = json.dumps(_without_timings(metrics), indent=2, sort_keys=True)
        (tmp / "metrics.json").write_text(recorded + "\n")
        for name, folder in (extra_dirs or {}).items():
            shutil.move(str(folder), str(tmp / name))
        write_checksums(tmp)  # every file, trainer state included: verified when loaded
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def save_merged_checkpoint(
    model: torch.nn.Module,
    state_dict: dict[str, torch.Tensor] | None,
    source_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    metrics: dict[str, Any],
    *,
    dtype: str | None,
) -> Path:
    """Save a trained LoRA policy as full weights with its adapter merged in, the adapter itself
    kept in `lora_adapter/` for the record. The adapter is written first (as `save_checkpoint`
    does, which also gathers it under ZeRO-3), then loaded onto its base and merged by the same
    code every inference stage uses (`load_model`), so the saved weights are what those stages
    would have computed from base + adapter."""
    from sdar_core.models import load_model

    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.adapter-", dir=out.parent))
    adapter = staging / "lora_adapter"
    try:
        save_checkpoint(model, state_dict, source_dir, adapter, metrics)
        merged = load_model(adapter, dtype=dtype)
        base = model_config_dir(Path(source_dir))
        return save_checkpoint(
            merged, None, base, out, metrics, extra_dirs={"lora_adapter": adapter}
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
