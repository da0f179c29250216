"""The trajectory artifact: round trip, atomic writes, and validation that names the bad column."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sdar_core.errors import ArtifactError
from sdar_core.rollout.schema import (
    DATA_FILE,
    FEATURES,
    METADATA_FILE,
    SCHEMA_VERSION,
    read_trajectories,
    write_trajectories,
)

ROW = {
    "prompt_ids": [1, 2, 3],
    "response_ids": [4, 5],
    "response_mask": [1, 1],
    "old_logprobs": [-0.5, -1.25],
    "prompt_messages": json.dumps([{"role": "user", "content": "hi"}]),
    "layout": "per_step",
    "round": 0,
    "group_id": "r0-g0",
    "member": 0,
    "task_id": "t",
    "task_type": "pick_and_place_simple",
    "task_text": "put a mug in cabinet",
    "step_index": 0,
    "n_steps": 1,
    "step_reward": 0.0,
    "episode_reward": 10.0,
    "won": True,
    "invalid_action": False,
    "n_invalid_actions": 0,
    "truncated": False,
    "episode_truncated": False,
    "env_name": "alfworld",
    "episode_seed": 12345678901,
    "env_info": "[]",
}


def _rows(n: int = 3) -> dict[str, list]:
    return {k: [v] * n for k, v in ROW.items()}


def _write(path: Path) -> Path:
    return write_trajectories(
        path, _rows(), kind="trajectories", metadata={"layout": "per_step"}, summary={"x": 1}
    )


def test_round_trip_keeps_values_and_types(tmp_path):
    out = _write(tmp_path / "traj")
    ds = read_trajectories(out)
    assert ds.features == FEATURES and len(ds) == 3
    assert ds[0]["old_logprobs"] == [-0.5, -1.25] and ds[0]["prompt_ids"] == [1, 2, 3]
    assert ds[1]["episode_seed"] == ROW["episode_seed"] and ds[2]["won"] is True
    meta = json.loads((out / METADATA_FILE).read_text())
    assert meta["schema_version"] == SCHEMA_VERSION and meta["kind"] == "trajectories"
    assert json.loads((out / "summary.json").read_text()) == {"x": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["traj"]  # no temporary left behind


def test_write_refuses_non_empty_dir_and_leaves_nothing_on_bad_rows(tmp_path):
    out = _write(tmp_path / "traj")
    with pytest.raises(ArtifactError, match="not empty"):
        _write(out)
    bad = _rows() | {"old_logprobs": [[-0.5]] * 3}  # one log-prob for two response tokens
    with pytest.raises(ArtifactError, match="old_logprobs"):
        write_trajectories(tmp_path / "bad", bad, kind="trajectories", metadata={}, summary={})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["traj"]


def _corrupt_table(path: Path, change) -> None:
    table = pq.read_table(path / DATA_FILE)
    pq.write_table(change(table), path / DATA_FILE)


@pytest.mark.parametrize(
    ("change", "column"),
    [
        (lambda t: t.drop_columns(["response_mask"]), "response_mask"),
        (
            lambda t: t.set_column(
                t.schema.get_field_index("won"), "won", pa.array([1, 0, 1], pa.int64())
            ),
            "won",
        ),
        (lambda t: t.append_column("surprise", pa.array([1, 2, 3])), "surprise"),
        (
            lambda t: t.set_column(
                t.schema.get_field_index("old_logprobs"),
                "old_logprobs",
                pa.array([[0.0]] * 3, pa.list_(pa.float32())),
            ),
            "old_logprobs",
        ),
        (lambda t: t.slice(0, 2), "rows"),
    ],
)
def test_corrupted_artifact_is_rejected_naming_the_column(tmp_path, change, column):
    out = _write(tmp_path / "traj")
    _corrupt_table(out, change)
    with pytest.raises(ArtifactError, match=column):
        read_trajectories(out)


def test_other_schema_version_or_missing_metadata_is_rejected(tmp_path):
    out = _write(tmp_path / "traj")
    meta = json.loads((out / METADATA_FILE).read_text())
    (out / METADATA_FILE).write_text(json.dumps(meta | {"schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(ArtifactError, match="schema version"):
        read_trajectories(out)
    (out / METADATA_FILE).unlink()
    with pytest.raises(ArtifactError, match="not a trajectory artifact"):
        read_trajectories(out)


def test_unscored_artifact_is_refused_where_teacher_logprobs_are_required(tmp_path):
    out = _write(tmp_path / "traj")
    with pytest.raises(ArtifactError, match="score_teacher"):
        read_trajectories(out, require_teacher=True)


def test_importing_the_schema_and_the_evaluation_does_not_import_datasets():
    """The evaluation stage never reads trajectories: it must not pay for datasets, pandas and
    pyarrow (about 1 s per task) because the rollout package holds the schema."""
    import subprocess
    import sys

    code = (
        "import sys, sdar_core.rollout, sdar_core.rollout.schema, sdar_core.evaluation\n"
        "print([m for m in ('datasets', 'pyarrow', 'pandas') if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_features_follow_the_column_types():
    from sdar_core.rollout.schema import COLUMN_TYPES, SCORED_COLUMNS, SCORED_FEATURES

    assert list(FEATURES) == list(COLUMN_TYPES) and list(SCORED_FEATURES) == list(SCORED_COLUMNS)
    assert str(FEATURES.arrow_schema.field("prompt_ids").type) == "list<item: int32>"
    assert str(SCORED_FEATURES.arrow_schema.field("teacher_skill_tokens").type) == "int32"
