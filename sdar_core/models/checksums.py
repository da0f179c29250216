"""Checksums of a checkpoint folder, written when it is saved and verified when it is loaded.

`write_checksums(folder)` records the sha256 and size of every file directly in the folder
(weights, config, tokenizer, metrics) in `checksums.json`; subfolders (e.g. a trainer state) are
not part of the model and are left out. `verify_checksums(folder)` refuses a folder whose files
differ from the record, naming the file, so a checkpoint with bytes overwritten or cut off is
never loaded as if it were fine (garbage in a weights file otherwise loads as NaN or random
weights). A folder without `checksums.json` (a model saved by other tools, or before checksums
were written) is not verified; `check_safetensors` still catches a truncated weights file there.

Hashing reads every byte: about 1 s per GB.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

from sdar_core.errors import ArtifactError

__all__ = ["CHECKSUMS_FILE", "check_safetensors", "verify_checksums", "write_checksums"]

CHECKSUMS_FILE = "checksums.json"
KIND = "sdar_checkpoint_checksums"
_CHUNK = 1 << 20


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name != CHECKSUMS_FILE)


def write_checksums(folder: str | os.PathLike[str]) -> Path:
    """Record the sha256 and size of every file of `folder` in `folder/checksums.json`."""
    folder = Path(folder)
    files = {p.name: {"sha256": _sha256(p), "bytes": p.stat().st_size} for p in _files(folder)}
    path = folder / CHECKSUMS_FILE
    path.write_text(json.dumps({"kind": KIND, "files": files}, indent=1, sort_keys=True) + "\n")
    return path


def _read_record(path: Path) -> dict[str, Any]:
    hint = "the checkpoint is damaged: save it again, or use the checkpoint it was made from"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ArtifactError(f"{path} is not readable JSON ({err}): {hint}") from None
    files = record.get("files") if isinstance(record, dict) else None
    if not isinstance(files, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("sha256"), str) for v in files.values()
    ):
        raise ArtifactError(f"{path} has no 'files' table of sha256 checksums: {hint}")
    return files


def verify_checksums(folder: str | os.PathLike[str]) -> bool:
    """Raise ArtifactError naming the first recorded file of `folder` that is missing, cut or
    changed; return False when the folder has no checksums.json (nothing to verify). Files added
    later (notes, an adapter's README) are not checked."""
    folder = Path(folder)
    path = folder / CHECKSUMS_FILE
    if not path.is_file():
        return False
    recorded = _read_record(path)
    hint = "the checkpoint is damaged: save it again, or use the checkpoint it was made from"
    for name, entry in sorted(recorded.items()):
        file = folder / name
        if not file.is_file():
            raise ArtifactError(f"{file} is missing (listed in {CHECKSUMS_FILE}): {hint}")
        size = file.stat().st_size
        if "bytes" in entry and size != entry["bytes"]:
            raise ArtifactError(
                f"{file} has {size} bytes, {entry['bytes']} were saved (truncated or extended): "
                f"{hint}"
            )
        if _sha256(file) != entry["sha256"]:
            raise ArtifactError(f"{file} does not match its sha256 in {CHECKSUMS_FILE}: {hint}")
    return True


def check_safetensors(path: str | os.PathLike[str]) -> None:
    """Raise ArtifactError naming `path` unless its header is complete and its tensors' bytes
    all lie inside the file (a truncated or garbled weights file fails here, with its path)."""
    path = Path(path)
    size = path.stat().st_size
    hint = "the file is truncated or not a safetensors file: save the checkpoint again"
    with path.open("rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise ArtifactError(f"{path} has {size} bytes, no safetensors header: {hint}")
        (n_header,) = struct.unpack("<Q", head)
        if n_header > size - 8:
            raise ArtifactError(f"{path} has {size} bytes but its header claims {n_header}: {hint}")
        try:
            header = json.loads(handle.read(n_header))
        except ValueError:
            raise ArtifactError(f"{path} has an unreadable safetensors header: {hint}") from None
    if not isinstance(header, dict):
        raise ArtifactError(f"{path} has an unreadable safetensors header: {hint}")
    ends = [
        entry["data_offsets"][1]
        for name, entry in header.items()
        if name != "__metadata__" and isinstance(entry, dict) and "data_offsets" in entry
    ]
    needed = 8 + n_header + max(ends, default=0)
    if needed > size:
        raise ArtifactError(f"{path} has {size} bytes, its tensors need {needed}: {hint}")
