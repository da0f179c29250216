"""What a run was given: the model and data as a URI plus a content hash, for MLflow.

`tree_sha256` hashes a file, or a folder as the sorted list of (relative path, SHA-256 of the
file) pairs, so two folders with the same files hash alike wherever they live, and a changed,
added or renamed file changes the hash. Hidden files and folders (names starting with ".") are
left out: they are caches and lock files, not content. A hub id or a remote URI (s3://, gs://)
cannot be read from here and gets no hash (None).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["input_identity", "tree_sha256"]


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tree_sha256(path: str | os.PathLike[str]) -> str | None:
    """Content hash of a local file or folder (module docstring); None if it is not local."""
    root = Path(path)
    if root.is_file():
        return _file_sha256(root)
    if not root.is_dir():
        return None
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = file.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        digest.update(f"{relative.as_posix()}\0{_file_sha256(file)}\n".encode())
    return digest.hexdigest()


def input_identity(model_uri: str, data_uri: str) -> dict[str, str | None]:
    """{"model_uri", "model_sha256", "data_uri", "data_sha256"} (hashes None where not local)."""
    return {
        "model_uri": model_uri,
        "model_sha256": tree_sha256(model_uri),
        "data_uri": data_uri,
        "data_sha256": tree_sha256(data_uri),
    }
