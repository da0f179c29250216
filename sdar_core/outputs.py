"""The one rule for commands that replace an output folder: only what the command itself wrote.

`check_output_dir` is called before anything is written. A missing or empty folder is fine. A
folder that holds the command's own kind of output (recognised by its marker, e.g. the `kind` of
its manifest.json) may be replaced: at once where the command documents that, else only with
`--overwrite`. Anything else is refused, whatever the flags: a typo in an output path must never
delete a folder of games, a model or a user's notes.

`write_text_atomic` writes a file whole or not at all (a temporary sibling, then a rename).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sdar_core.errors import ArtifactError

__all__ = ["check_output_dir", "manifest_of", "write_text_atomic"]


def write_text_atomic(path: Path, text: str) -> Path:
    """Write `text` to `path` through a temporary sibling (`.<name>.tmp`) and a rename, so a
    reader never sees half of it."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


def manifest_of(folder: Path, name: str = "manifest.json") -> dict[str, Any] | None:
    """The JSON object in `folder/name`, or None when there is none (or it is not an object)."""
    try:
        found = json.loads((folder / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def check_output_dir(
    out_dir: Path,
    *,
    is_own: Callable[[Path], bool],
    what: str,
    command: str,
    overwrite: bool,
) -> bool:
    """Whether `out_dir` holds output to replace; raise ArtifactError when it may not be.

    `is_own(out_dir)` says whether the folder holds `what` (e.g. "a skill index"), as written by
    `command`; `overwrite` is the user's consent to replace such a folder.
    """
    if not out_dir.exists():
        return False
    if not out_dir.is_dir():
        raise ArtifactError(f"{out_dir} is a file, not a folder: choose a folder for {command}")
    if not any(out_dir.iterdir()):
        return False
    if not is_own(out_dir):
        raise ArtifactError(
            f"{out_dir} is not empty and is not {what} written by `{command}`, so it is left "
            f"alone (--overwrite replaces only {what}): choose a new or empty folder"
        )
    if not overwrite:
        raise ArtifactError(f"{out_dir} already holds {what}: pass --overwrite to replace it")
    return True
