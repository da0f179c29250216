"""The trajectory artifact: a versioned Hugging Face `datasets` parquet dataset, written atomically.

An artifact is one directory::

    data.parquet     the samples (one row per training sample; columns below)
    metadata.json    {"schema_version", "kind", "layout", "n_rows", ...producer settings}
    summary.json     rollout (and teacher) statistics: success rate, mean steps, ...
    checksums.json   sha256 of the three (sdar_core.models.checksums): a resumed run checks it
                     before it reuses the artifact

`kind` is "trajectories" (written by `generate_rollouts`) or "scored_trajectories" (written by
`score_teacher`, which adds the TEACHER_COLUMNS). `read_trajectories(dir)` checks the version,
the kind, every column's presence and type, and that per-token columns have matching lengths; any
mismatch raises ArtifactError naming the column.

Columns (schema version 1). Per-token columns are aligned with `response_ids`.

- `prompt_ids` list<int32>: the tokens the response was generated from (per-step), or the first
  turn's prompt (whole-trajectory).
- `response_ids` list<int32>: what follows the prompt: one sampled response (per-step), or every
  sampled response with the environment's tokens in between (whole-trajectory).
- `response_mask` list<int8>: 1 on sampled (agent) tokens, 0 on environment tokens.
- `old_logprobs` list<float32>: log softmax(logits / temperature) of each sampled token under the
  policy that sampled it (0.0 on environment tokens).
- `prompt_messages` string: JSON chat messages whose chat-template rendering is the start of
  `prompt_ids` (the window for per-step samples, the first turn for full-chat samples); the teacher
  inserts its skills into these.
- `layout` string: "per_step" or "whole_trajectory".
- `round` int32: the rollout round (selects the tasks).
- `group_id` string: the task instance the G members of a group played ("r<round>-g<index>").
- `member` int32: the member's index within its group, 0..G-1.
- `task_id`, `task_type`, `task_text` string: the environment's task.
- `step_index` int32: the agent turn of a per-step sample (0-based); 0 for whole-trajectory.
- `n_steps` int32: agent turns in the episode.
- `step_reward` float32: environment reward of this turn (per-step) or of the episode.
- `episode_reward` float32: sum of the episode's environment rewards.
- `won` bool: the episode reached its goal.
- `invalid_action` bool: this turn's action (per-step) or any action (whole-trajectory) was
  invalid; `n_invalid_actions` int32 counts them.
- `truncated` bool: a response of this sample hit max_new_tokens (kept, not dropped).
- `episode_truncated` bool: the episode ended by the step limit, the prompt-token limit or an
  environment error instead of finishing.
- `env_name` string, `episode_seed` int64: which environment, and the episode's seed.
- `env_info` string: JSON list, one entry per turn of the sample: action, invalid_reason, error,
  finish_reason.

Teacher columns (kind "scored_trajectories"): `teacher_logprobs` list<float32> (aligned with
`response_ids`, 0.0 on environment tokens), `teacher_skills` string (JSON list of skill names),
`teacher_skill_tokens` int32 (prompt tokens the skills added).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdar_core.errors import ArtifactError

if TYPE_CHECKING:
    import datasets
    import pyarrow as pa

__all__ = [
    "COLUMNS",
    "DATA_FILE",
    "FEATURES",  # noqa: F822 (built on first use, module __getattr__)
    "METADATA_FILE",
    "SCHEMA_VERSION",
    "SCORED_COLUMNS",
    "SCORED_FEATURES",  # noqa: F822
    "SUMMARY_FILE",
    "TOKEN_COLUMNS",
    "read_metadata",
    "read_trajectories",
    "write_trajectories",
]

SCHEMA_VERSION = 1
DATA_FILE = "data.parquet"
METADATA_FILE = "metadata.json"
SUMMARY_FILE = "summary.json"
KINDS = ("trajectories", "scored_trajectories")


# The columns and their types (module docstring). The `datasets.Features` are built from these on
# first use: every model stage imports this module, and datasets brings pandas and pyarrow
# (about 1 s) to stages that never read or write trajectories (the evaluation).
COLUMN_TYPES: dict[str, str] = {
    "prompt_ids": "list<int32>",
    "response_ids": "list<int32>",
    "response_mask": "list<int8>",
    "old_logprobs": "list<float32>",
    "prompt_messages": "string",
    "layout": "string",
    "round": "int32",
    "group_id": "string",
    "member": "int32",
    "task_id": "string",
    "task_type": "string",
    "task_text": "string",
    "step_index": "int32",
    "n_steps": "int32",
    "step_reward": "float32",
    "episode_reward": "float32",
    "won": "bool",
    "invalid_action": "bool",
    "n_invalid_actions": "int32",
    "truncated": "bool",
    "episode_truncated": "bool",
    "env_name": "string",
    "episode_seed": "int64",
    "env_info": "string",
}
TEACHER_COLUMN_TYPES: dict[str, str] = {
    "teacher_logprobs": "list<float32>",
    "teacher_skills": "string",
    "teacher_skill_tokens": "int32",
}
COLUMNS = tuple(COLUMN_TYPES)
SCORED_COLUMNS = (*COLUMNS, *TEACHER_COLUMN_TYPES)
# Columns with one entry per response token.
TOKEN_COLUMNS = ("response_mask", "old_logprobs", "teacher_logprobs")
_FEATURE_KINDS = {"FEATURES": "trajectories", "SCORED_FEATURES": "scored_trajectories"}


@functools.cache
def features_for(kind: str) -> datasets.Features:
    """The features of an artifact of `kind`."""
    if kind not in KINDS:
        raise ArtifactError(f"unknown trajectory artifact kind {kind!r}: expected one of {KINDS}")
    import datasets

    types = COLUMN_TYPES if kind == "trajectories" else COLUMN_TYPES | TEACHER_COLUMN_TYPES
    return datasets.Features(
        {
            name: datasets.List(datasets.Value(dtype[5:-1]))
            if dtype.startswith("list<")
            else datasets.Value(dtype)
            for name, dtype in types.items()
        }
    )


def __getattr__(name: str) -> Any:
    """FEATURES and SCORED_FEATURES, built on first use (PEP 562)."""
    if name not in _FEATURE_KINDS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return features_for(_FEATURE_KINDS[name])


def write_trajectories(
    out_dir: str | os.PathLike[str],
    rows: Mapping[str, list[Any]] | datasets.Dataset,
    *,
    kind: str,
    metadata: Mapping[str, Any],
    summary: Mapping[str, Any],
) -> Path:
    """Write an artifact directory atomically (temporary sibling, then rename); return its path.

    `rows` is a column dict or a Dataset with exactly the columns of `kind`. `out_dir` must not
    exist or be an empty directory, so a finished artifact is never overwritten.
    """
    import pyarrow.parquet as pq

    from sdar_core.models.checksums import write_checksums

    features = features_for(kind)
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ArtifactError(f"{out} already exists and is not empty: choose a new out_dir")
    table = _to_table(rows, features)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        pq.write_table(table, tmp / DATA_FILE)
        meta = {**metadata, "schema_version": SCHEMA_VERSION, "kind": kind, "n_rows": len(table)}
        _write_json(tmp / METADATA_FILE, meta)
        _write_json(tmp / SUMMARY_FILE, dict(summary))
        write_checksums(tmp)  # what a resumed run checks before it reuses the artifact
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _to_table(rows: Mapping[str, list[Any]] | datasets.Dataset, features) -> pa.Table:
    import datasets

    if isinstance(rows, datasets.Dataset):
        table = rows.data.table
    else:
        names = set(rows)
        if names != set(features):
            missing, extra = sorted(set(features) - names), sorted(names - set(features))
            raise ArtifactError(f"rows do not match the schema: missing {missing}, extra {extra}")
        table = datasets.Dataset.from_dict(dict(rows), features=features).data.table
    table = table.select(list(features))
    _validate_table(table, features, source="rows to write")
    return table


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def read_metadata(artifact_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """metadata.json of an artifact, after checking the schema version and kind."""
    path = Path(artifact_dir) / METADATA_FILE
    if not path.is_file():
        raise ArtifactError(
            f"{artifact_dir} is not a trajectory artifact (no {METADATA_FILE}): pass a directory "
            "written by generate_rollouts or score_teacher"
        )
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path} is not valid JSON ({exc}): regenerate the artifact") from exc
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ArtifactError(
            f"{artifact_dir} has trajectory schema version {version!r}; this sdar_core reads "
            f"version {SCHEMA_VERSION}: regenerate it with this version's generate_rollouts"
        )
    features_for(meta.get("kind"))
    return meta


def read_trajectories(
    artifact_dir: str | os.PathLike[str], *, require_teacher: bool = False
) -> datasets.Dataset:
    """The samples of an artifact as a Dataset, validated against its schema (see module doc)."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    meta = read_metadata(artifact_dir)
    if require_teacher and meta["kind"] != "scored_trajectories":
        raise ArtifactError(
            f"{artifact_dir} holds unscored trajectories (no teacher_logprobs): run score_teacher "
            "on it first, or use an algorithm that needs no teacher"
        )
    path = Path(artifact_dir) / DATA_FILE
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise ArtifactError(f"cannot read {path} ({exc}): regenerate the artifact") from exc
    features = features_for(meta["kind"])
    _validate_table(table, features, source=str(path))
    if len(table) != meta.get("n_rows"):
        raise ArtifactError(
            f"{path} has {len(table)} rows but {METADATA_FILE} says {meta.get('n_rows')}: "
            "the artifact is incomplete; regenerate it"
        )
    return datasets.Dataset(table.select(list(features)))


def _validate_table(table: pa.Table, features: datasets.Features, *, source: str) -> None:
    import pyarrow.compute as pc

    expected = features.arrow_schema
    for field in expected:
        if field.name not in table.schema.names:
            raise ArtifactError(f"{source}: column {field.name!r} is missing")
        actual = table.schema.field(field.name).type
        if not actual.equals(field.type, check_metadata=False) and not _same_list(actual, field):
            raise ArtifactError(
                f"{source}: column {field.name!r} has type {actual}, expected {field.type}"
            )
    extra = sorted(set(table.schema.names) - set(expected.names))
    if extra:
        raise ArtifactError(f"{source}: unexpected column {extra[0]!r} (columns: {extra})")
    for name in ("prompt_ids", "response_ids", *TOKEN_COLUMNS):
        if name in expected.names and table.column(name).null_count:
            raise ArtifactError(f"{source}: column {name!r} has null rows")
    lengths = pc.list_value_length(table.column("response_ids"))
    for name in TOKEN_COLUMNS:
        if name in expected.names:
            same = pc.all(pc.equal(pc.list_value_length(table.column(name)), lengths)).as_py()
            if same is False:
                raise ArtifactError(
                    f"{source}: column {name!r} has rows whose length differs from response_ids"
                )


def _same_list(actual: pa.DataType, field: pa.Field) -> bool:
    """list<element: T> and list<item: T> are the same column (only the child's name differs)."""
    import pyarrow as pa

    return (
        pa.types.is_list(actual)
        and pa.types.is_list(field.type)
        and actual.value_type.equals(field.type.value_type)
    )
