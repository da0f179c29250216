"""Checksums of a checkpoint folder, written when it is saved and verified when it is loaded.

`write_checksums(folder)` records the sha256 and size of every file of the folder, subfolders
included (weights, config, tokenizer, metrics, and the trainer state an RL update keeps in
`trainer_state/`), in `checksums.json`, keyed by the path relative to the folder.
`verify_checksums(folder)` refuses a folder whose files differ from the record, naming the file,
so a checkpoint with bytes overwritten or cut off is never loaded as if it were fine (garbage in
a weights file otherwise loads as NaN or random weights; garbled optimizer moments otherwise
train on silently). `verify_checksums(folder)` checks the files directly in the folder (the
model: what loading it reads); resuming the optimizer checks its subfolder
(`subfolder="trainer_state", nested=True`); `damaged_file` checks every file and says in a few
words what the first bad one is (for a resumed run's notice).
A folder without `checksums.json` (a model saved by other tools, or before checksums were
written) is not verified; `check_safetensors` still catches a truncated weights file there.
Records written before subfolders were covered list only the top-level files.

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
from sdar_core.outputs import write_text_atomic

__all__ = [
    "CHECKSUMS_FILE",
    "check_safetensors",
    "damaged_file",
    "file_sha256",
    "recorded_files",
    "verify_checksums",
    "write_checksums",
]

CHECKSUMS_FILE = "checksums.json"
KIND = "sdar_checkpoint_checksums"
_CHUNK = 1 << 20
_HINT = "the checkpoint is damaged: save it again, or use the checkpoint it was made from"


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _files(folder: Path) -> list[Path]:
    record = folder / CHECKSUMS_FILE
    return sorted(p for p in folder.rglob("*") if p.is_file() and p != record)


def write_checksums(folder: str | os.PathLike[str]) -> Path:
    """Record the sha256 and size of every file under `folder` in `folder/checksums.json`."""
    folder = Path(folder)
    files = {
        p.relative_to(folder).as_posix(): {"sha256": file_sha256(p), "bytes": p.stat().st_size}
        for p in _files(folder)
    }
    record = json.dumps({"kind": KIND, "files": files}, indent=1, sort_keys=True) + "\n"
    return write_text_atomic(folder / CHECKSUMS_FILE, record)


def _read_record(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ArtifactError(f"{path} is not readable JSON ({err}): {_HINT}") from None
    files = record.get("files") if isinstance(record, dict) else None
    if not isinstance(files, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("sha256"), str) for v in files.values()
    ):
        raise ArtifactError(f"{path} has no 'files' table of sha256 checksums: {_HINT}")
    return files


def recorded_files(
    folder: str | os.PathLike[str], *, subfolder: str | None = None, nested: bool = True
) -> dict[str, dict[str, Any]] | None:
    """The record's entries (relative path -> sha256, bytes) for the files under `subfolder`
    (None: the whole folder), without those in deeper folders when `nested` is False; None
    when the folder has no checksums.json."""
    path = Path(folder) / CHECKSUMS_FILE
    if not path.is_file():
        return None
    prefix = f"{subfolder.strip('/')}/" if subfolder else ""
    return {
        name: entry
        for name, entry in _read_record(path).items()
        if name.startswith(prefix) and (nested or "/" not in name[len(prefix) :])
    }


def _first_problem(folder: Path, entries: dict[str, dict[str, Any]]) -> tuple[Path, str] | None:
    """The first recorded file that is missing, cut or changed, and what is wrong with it."""
    for name, entry in sorted(entries.items()):
        file = folder / name
        if not file.is_file():
            return file, "missing"
        size = file.stat().st_size
        if "bytes" in entry and size != entry["bytes"]:
            return file, f"{size} bytes, {entry['bytes']} were saved"
        if file_sha256(file) != entry["sha256"]:
            return file, "sha256 mismatch"
    return None


def verify_checksums(
    folder: str | os.PathLike[str],
    *,
    subfolder: str | None = None,
    nested: bool = False,
    fix: str = _HINT,
) -> bool:
    """Raise ArtifactError naming the first recorded file directly in `folder` (in `subfolder`
    when given; with `nested`, in deeper folders too) that is missing, cut or changed, ending
    with `fix`; return False when the folder has no checksums.json (nothing to verify). Files
    added later (notes, an adapter's README) are not checked."""
    folder = Path(folder)
    entries = recorded_files(folder, subfolder=subfolder, nested=nested)
    if entries is None:
        return False
    problem = _first_problem(folder, entries)
    if problem is None:
        return True
    file, what = problem
    if what == "missing":
        raise ArtifactError(f"{file} is missing (listed in {CHECKSUMS_FILE}): {fix}")
    if what == "sha256 mismatch":
        raise ArtifactError(f"{file} does not match its sha256 in {CHECKSUMS_FILE}: {fix}")
    raise ArtifactError(f"{file} has {what} (truncated or extended): {fix}")


def damaged_file(folder: str | os.PathLike[str]) -> str | None:
    """`"<file>: <what is wrong>"` for the first file of `folder` that differs from its
    checksums.json (or "no checksums.json" / the record's own problem), None when all match."""
    folder = Path(folder)
    try:
        entries = recorded_files(folder)
    except ArtifactError:
        return f"{CHECKSUMS_FILE}: unreadable"
    if entries is None:
        return f"no {CHECKSUMS_FILE}"
    problem = _first_problem(folder, entries)
    if problem is None:
        return None
    file, what = problem
    return f"{file.relative_to(folder).as_posix()}: {what}"


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
