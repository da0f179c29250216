"""What a resumed run checks before it reuses a finished task's output: the output against the
checksum record written when it was produced.

`output_damage(path, kind=..., metadata=...)` says in a few words what is wrong with one output
artifact, or None when it matches its record:

- a folder with `checksums.json` (checkpoints, trajectories, scored trajectories): every file it
  lists, trainer state included (sdar_core.models.checksums);
- a skill index: the file checksums in its manifest (sdar_core.skills.index.verify_index);
- a Metrics file: its JSON equals the metrics recorded with the artifact (the record is the
  artifact's metadata, kept in the pipeline's cache entry);
- any other file (an evaluation JSON): the `sha256` in the artifact's metadata, which the
  component sets when it writes the file (`file_record`).

An output with no record (written by an older version, or by other tools) cannot be verified
and counts as damaged: the task runs again rather than trusting it. The pipeline runner calls
this for every output of a cached task (pipelines/cache.py); sdar_core itself never sees kfp.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["METRICS_KIND", "RECORD_KEY", "file_record", "output_damage"]

METRICS_KIND = "system.Metrics"
RECORD_KEY = "sha256"  # the metadata entry holding a file output's checksum


def file_record(path: str | os.PathLike[str]) -> dict[str, str]:
    """The metadata to set on a file output as it is written: `{"sha256": <hex digest>}`."""
    from sdar_core.models.checksums import file_sha256

    return {RECORD_KEY: file_sha256(path)}


def output_damage(
    path: str | os.PathLike[str], *, kind: str, metadata: Mapping[str, Any]
) -> str | None:
    """What is wrong with the output at `path` ("model.safetensors: sha256 mismatch"), or
    None when it matches its record (module docstring). `kind` is the artifact's schema title
    (e.g. "system.Metrics"), `metadata` the metadata recorded with it."""
    path = Path(path)
    if not path.exists():
        return "missing"
    if path.is_dir():
        return _folder_damage(path)
    if kind == METRICS_KIND:
        return _metrics_damage(path, metadata)
    recorded = metadata.get(RECORD_KEY)
    if not isinstance(recorded, str):
        return "no checksum record"
    from sdar_core.models.checksums import file_sha256

    return None if file_sha256(path) == recorded else f"{path.name}: sha256 mismatch"


def _folder_damage(folder: Path) -> str | None:
    from sdar_core.models.checksums import CHECKSUMS_FILE, damaged_file

    if (folder / CHECKSUMS_FILE).is_file():
        return damaged_file(folder)
    from sdar_core.skills.index import REBUILD_HINT, is_skill_index, verify_index

    if not is_skill_index(folder):
        return "no checksum record"
    from sdar_core.errors import ArtifactError

    try:
        verify_index(folder)
    except ArtifactError as err:  # the message without the folder and the fix
        return str(err).removeprefix(f"{folder}: ").removesuffix(f": {REBUILD_HINT}")
    return None


def _metrics_damage(path: Path, metadata: Mapping[str, Any]) -> str | None:
    try:
        written = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return f"{path.name}: not readable JSON"
    recorded = dict(metadata)
    same = isinstance(written, dict) and written.keys() == recorded.keys()
    if same and all(_same_value(written[k], recorded[k]) for k in written):
        return None
    return f"{path.name}: differs from its record"


def _same_value(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN (a stage may log a NaN metric; JSON keeps it)."""
    return a == b or (isinstance(a, float) and isinstance(b, float) and a != a and b != b)
