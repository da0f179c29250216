"""Load a causal LM and its tokenizer from a local directory or a Hugging Face hub id.

One code path for both: a local directory is checked first (config.json and safetensors weights
must be there; pickle-only `.bin` checkpoints are refused because unpickling can run arbitrary
code), anything else must look like a hub id (`name` or `owner/name`) and goes to
`from_pretrained`. Weights load with `use_safetensors=True` and `trust_remote_code=False` unless
the caller opts in. A missing path that cannot be a hub id fails at once with an ArtifactError
naming it, instead of a network lookup. A tokenizer without a pad token gets its eos token as pad.
A LoRA checkpoint folder (adapter_config.json + adapter weights, as a LoRA update writes it)
loads as its base model with the adapter merged, so every inference stage takes one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

import torch
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from sdar_core.errors import ArtifactError, ConfigError, UnknownNameError
from sdar_core.models.checksums import check_safetensors, verify_checksums

DTYPES: dict[str, torch.dtype | Literal["auto"]] = {
    "auto": "auto",  # the dtype the checkpoint was saved in
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
SAFETENSORS_FILES = ("model.safetensors", "model.safetensors.index.json")
PICKLE_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
ADAPTER_CONFIG = "adapter_config.json"  # a peft LoRA checkpoint
ADAPTER_WEIGHTS = "adapter_model.safetensors"


def resolve_dtype(dtype: torch.dtype | str | None) -> torch.dtype | Literal["auto"]:
    """A torch dtype, or "auto" for None; names are looked up in DTYPES."""
    if dtype is None:
        return "auto"
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return DTYPES[dtype]
    except KeyError:
        raise UnknownNameError(f"unknown dtype {dtype!r}: choose one of {sorted(DTYPES)}") from None


def resolve_source(
    name_or_path: str | os.PathLike[str], *, required: tuple[tuple[str, ...], ...]
) -> str:
    """`name_or_path` as a string for from_pretrained, after checking that it can be loaded.

    An existing path must be a directory holding, for each entry of `required`, at least one of
    the file names in that entry. A path that does not exist must be a valid hub id.
    """
    path = Path(name_or_path)
    if path.exists():
        if not path.is_dir():
            raise ArtifactError(f"{path} is a file; pass the model directory that contains it")
        for names in required:
            if not any((path / name).is_file() for name in names):
                raise ArtifactError(
                    f"model directory {path} has no {' or '.join(names)}: "
                    "save the model there with save_pretrained (or build_tiny_model)"
                )
        return str(path)
    name = os.fspath(name_or_path)
    try:
        validate_repo_id(name)
    except HFValidationError:
        raise ArtifactError(
            f"model path {name!r} does not exist and is not a hub id (owner/name): "
            "pass an existing model directory, e.g. one made by build_tiny_model"
        ) from None
    return name


def check_weights(source: str) -> None:
    """Raise an ArtifactError unless a local model folder holds intact safetensors weights: its
    checksums.json (when there is one) matches, and no .safetensors file is cut short. A
    pickle-only folder gets its own message. Hub ids and non-folders pass: their loader checks
    them."""
    path = Path(source)
    if not path.is_dir():
        return
    if any((path / name).is_file() for name in SAFETENSORS_FILES):
        verify_checksums(path)
        for weights in sorted(path.glob("*.safetensors")):
            check_safetensors(weights)
        return
    pickles = sorted(p.name for p in path.glob("*.bin"))
    if pickles:
        raise ArtifactError(
            f"model directory {path} holds only pickle checkpoints ({', '.join(pickles)}); "
            "sdar loads safetensors only because unpickling can run arbitrary code: load it "
            "once where you trust it and re-save with model.save_pretrained(dir), which "
            "writes model.safetensors"
        )
    raise ArtifactError(
        f"model directory {path} has no weights ({' or '.join(SAFETENSORS_FILES)}): "
        "save the model there with save_pretrained (or build_tiny_model)"
    )


def load_model(
    name_or_path: str | os.PathLike[str],
    *,
    dtype: torch.dtype | str | None = None,
    device: str | torch.device = "cpu",
    trust_remote_code: bool = False,
) -> PreTrainedModel:
    """A causal LM from a local directory or hub id, in eval mode on `device`.

    `dtype` None keeps the checkpoint's dtype ("auto"); pass "float32" for exact CPU math.
    A LoRA checkpoint (a folder with adapter_config.json, as a LoRA update writes) is loaded as
    its base model with the adapter merged in (`merge_adapter`), for inference.
    """
    base = adapter_base(name_or_path)
    if base is not None:
        model = load_model(base, dtype=dtype, device=device, trust_remote_code=trust_remote_code)
        return merge_adapter(model, name_or_path)
    torch_dtype = resolve_dtype(dtype)
    try:
        target = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ConfigError(f"invalid device {device!r} ({err}): use 'cpu' or 'cuda:0'") from None
    source = resolve_source(name_or_path, required=(("config.json",),))
    check_weights(source)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            source, dtype=torch_dtype, use_safetensors=True, trust_remote_code=trust_remote_code
        )
    except OSError as err:
        raise ArtifactError(
            f"could not load model {source!r}: {err}. If this is a hub id, the hub must be "
            "reachable (or the model cached); otherwise pass a local model directory"
        ) from err
    check_finite_weights(model, source)
    return model.to(target).eval()


def check_finite_weights(model: torch.nn.Module, source: str | os.PathLike[str]) -> None:
    """Raise ArtifactError naming the first parameter of `model` holding a NaN or inf."""
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise ArtifactError(
                    f"model {source}: weight {name} holds NaN or inf values, so the checkpoint "
                    "is damaged or came from a diverged update: use the checkpoint it was made "
                    "from"
                )


def adapter_base(path: str | os.PathLike[str]) -> Path | None:
    """The base model folder of a LoRA checkpoint folder; None for anything else."""
    config_file = Path(path) / ADAPTER_CONFIG
    if not config_file.is_file():
        return None
    try:
        base = json.loads(config_file.read_text())["base_model_name_or_path"]
    except (ValueError, KeyError, TypeError) as err:
        raise ArtifactError(
            f"{config_file} is not a peft adapter config with base_model_name_or_path ({err}): "
            "save the adapter again with save_pretrained"
        ) from None
    if not Path(base).is_dir():
        raise ArtifactError(
            f"LoRA checkpoint {path}: its base model {base!r} (base_model_name_or_path in "
            f"{ADAPTER_CONFIG}) is not a local folder here; copy the base model there, or merge "
            "the adapter where the base is (peft merge_and_unload + save_pretrained)"
        )
    return Path(base)


def check_adapter(adapter_dir: str | os.PathLike[str]) -> None:
    """Raise ArtifactError unless `adapter_dir` holds a peft adapter in safetensors whose bytes
    match its checksums.json (when it has one), as a full checkpoint is checked when loaded."""
    if not (Path(adapter_dir) / ADAPTER_CONFIG).is_file():
        raise ArtifactError(
            f"{adapter_dir} has no {ADAPTER_CONFIG}: pass the folder a LoRA update wrote"
        )
    if not (Path(adapter_dir) / ADAPTER_WEIGHTS).is_file():
        raise ArtifactError(
            f"{adapter_dir} has no {ADAPTER_WEIGHTS}: sdar loads safetensors only (a pickled "
            "adapter_model.bin can run code when loaded); re-save the adapter with "
            "save_pretrained(dir, safe_serialization=True)"
        )
    verify_checksums(adapter_dir)
    check_safetensors(Path(adapter_dir) / ADAPTER_WEIGHTS)


def merge_adapter(model: PreTrainedModel, adapter_dir: str | os.PathLike[str]) -> PreTrainedModel:
    """`model` with the LoRA adapter saved in `adapter_dir` merged into its weights (eval mode)."""
    import peft

    check_adapter(adapter_dir)
    device = next(model.parameters()).device
    merged = peft.PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    check_finite_weights(merged, adapter_dir)
    return merged.to(device).eval()


def load_tokenizer(
    name_or_path: str | os.PathLike[str],
    *,
    trust_remote_code: bool = False,
    padding_side: Literal["left", "right"] | None = None,
    check_template: bool = True,
) -> PreTrainedTokenizerBase:
    """The tokenizer of a local directory or hub id, with a pad token (eos when none was saved).

    `padding_side` None keeps the saved side; pass "left" to batch prompts for generation.
    Its chat template is rendered once, bounded, in transformers' sandbox
    (sdar_core.models.templates) unless `check_template` is False: a template that escapes,
    hangs or fails is refused here in one line, not as a traceback or a hang mid-stage.
    """
    if padding_side not in (None, "left", "right"):
        raise ConfigError(f"padding_side must be 'left', 'right' or None, got {padding_side!r}")
    source = resolve_source(name_or_path, required=(TOKENIZER_FILES,))
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    except OSError as err:
        raise ArtifactError(
            f"could not load tokenizer {source!r}: {err}. If this is a hub id, the hub must be "
            "reachable (or the tokenizer cached); otherwise pass a local model directory"
        ) from err
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ArtifactError(
                f"tokenizer {source!r} has neither a pad nor an eos token: set pad_token in "
                "its tokenizer_config.json"
            )
        tokenizer.pad_token = tokenizer.eos_token
    if padding_side is not None:
        tokenizer.padding_side = padding_side
    if check_template:
        from sdar_core.models.templates import check_tokenizer_template

        check_tokenizer_template(tokenizer, where=f"the chat template of model {source}")
    return tokenizer
