"""Model stages sharded over worker processes: rollouts, teacher scoring and evaluation with two
worker processes write byte for byte the artifact one worker writes (tiny model, CPU); a worker
that fails fails the stage with its own error and leaves no output. (sdar_core.workers itself:
tests/test_workers.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sdar_core.errors import ConfigError
from sdar_core.evaluation import EvalConfig, evaluate
from sdar_core.rollout import RolloutConfig, generate_rollouts
from sdar_core.rollout.schema import DATA_FILE, METADATA_FILE
from sdar_core.skills import build_index, bundled_skills_dir
from sdar_core.teacher import TeacherConfig, score_teacher
from sdar_core.workers import WorkerError

QUIET = dict(show_progress=False)
# 3 groups of 2 in shards of 1 group: two workers get 2 + 1 shards (an uneven split)
ROLLOUT = dict(n_tasks=3, group_size=2, max_steps=2, max_new_tokens=10, shard_groups=1, **QUIET)


def _artifact_bytes(path: Path) -> tuple[bytes, dict]:
    """The parquet file's bytes and the metadata (which names the output folder's siblings)."""
    return (path / DATA_FILE).read_bytes(), json.loads((path / METADATA_FILE).read_text())


@pytest.fixture(scope="module")
def rollouts(tiny_model_dir, alfworld_games_dir, tmp_path_factory):
    """The same round played by 1 and by 2 workers, full-chat (window prompts are covered by
    the per-step layout of the teacher test's input)."""
    root = tmp_path_factory.mktemp("sharded_rollouts")
    out = {}
    for workers in (1, 2):
        config = RolloutConfig(**ROLLOUT, temperature=0.9, workers=workers)
        summary = generate_rollouts(
            tiny_model_dir, alfworld_games_dir, root / f"w{workers}", config
        )
        out[workers] = (root / f"w{workers}", summary)
    return out


@pytest.mark.transformers
def test_two_rollout_workers_write_the_artifact_of_one(rollouts):
    (one, s1), (two, s2) = rollouts[1], rollouts[2]
    assert (s1["workers"], s2["workers"]) == (1, 2)
    assert s1["n_episodes"] == s2["n_episodes"] == 6
    data1, meta1 = _artifact_bytes(one)
    data2, meta2 = _artifact_bytes(two)
    assert data1 == data2
    assert meta1 == meta2
    assert "workers" not in meta1["config"]
    timed = {"seconds", "generated_tokens_per_second", "env_steps_per_second", "workers"}
    assert {k: v for k, v in s1.items() if k not in timed} == {
        k: v for k, v in s2.items() if k not in timed
    }


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("sharded_index") / "index"
    return build_index(bundled_skills_dir("alfworld"), out, dense=False)


def _score_with_1_and_2_workers(model_dir, trajectories, index, out_root, **fields):
    """The scored artifacts (parquet bytes, metadata) of 1 and of 2 workers."""
    outs = []
    for workers in (1, 2):
        out = out_root / f"w{workers}"
        config = TeacherConfig(workers=workers, **fields, **QUIET)
        score_teacher(model_dir, trajectories, index, out, config)
        outs.append(_artifact_bytes(out))
    return outs


@pytest.mark.transformers
def test_two_teacher_workers_write_the_artifact_of_one(
    tiny_model_dir, rollouts, index_dir, tmp_path
):
    """The prefix-cache path (the default): min_prefix_tokens 1 sends every group through it."""
    one, two = _score_with_1_and_2_workers(
        tiny_model_dir, rollouts[1][0], index_dir, tmp_path, shard_groups=1, min_prefix_tokens=1
    )
    assert one == two


@pytest.mark.slow
@pytest.mark.transformers
def test_two_teacher_workers_pack_the_plain_path_as_one(
    tiny_model_dir, rollouts, index_dir, tmp_path
):
    """The plain path packs samples of several groups into one batch: shards of 2 groups."""
    one, two = _score_with_1_and_2_workers(
        tiny_model_dir, rollouts[1][0], index_dir, tmp_path, shard_groups=2, prefix_cache=False
    )
    assert one == two


@pytest.mark.transformers
def test_two_eval_workers_write_the_json_of_one(tiny_model_dir, alfworld_games_dir, tmp_path):
    texts = []
    for workers in (1, 2):
        # 3 tasks in batches of 2: the same batches ([0, 1], [2]) for 1 and 2 workers
        config = EvalConfig(
            split="train", max_steps=2, max_new_tokens=10, batch_size=2, workers=workers, **QUIET
        )
        path = tmp_path / f"w{workers}.json"
        results = evaluate(tiny_model_dir, alfworld_games_dir, path, config)
        assert len(results["episodes"]) == 3
        texts.append(path.read_bytes())
    assert texts[0] == texts[1]


@pytest.mark.transformers
def test_a_failing_rollout_worker_fails_the_stage_with_its_error(
    tiny_model_dir, alfworld_games_dir, tmp_path
):
    config = RolloutConfig(**(ROLLOUT | {"n_tasks": 4}), workers=2)  # 3 games: 4 tasks fail
    out = tmp_path / "rollouts"
    with pytest.raises(ConfigError, match="n_tasks=4 but the environment has only 3") as info:
        generate_rollouts(tiny_model_dir, alfworld_games_dir, out, config)
    assert isinstance(info.value.__cause__, WorkerError)
    assert "worker" in str(info.value.__cause__) and "Traceback" in str(info.value.__cause__)
    assert not out.exists() and not list(tmp_path.glob(".rollouts*"))


@pytest.mark.transformers
def test_vllm_teacher_scores_a_workers_shards_in_one_call_and_maps_them_back(
    tiny_model_dir, rollouts, index_dir, tmp_path, monkeypatch
):
    """vLLM is not installed here: a stand-in for `vllm_response_logprobs` scores each token
    as -(token id % 7), so every row's scores say which sequence they came from."""
    import sdar_core.teacher.vllm as teacher_vllm
    from sdar_core.rollout import read_trajectories

    calls = []

    def fake(model_dir, sequences, **options):
        calls.append(len(sequences))
        return [[-float(t % 7) for t in ids[start:]] for ids, start in sequences]

    monkeypatch.setattr(teacher_vllm, "vllm_response_logprobs", fake)
    config = TeacherConfig(backend="vllm", device="cuda", workers=1, shard_groups=1, **QUIET)
    out = tmp_path / "scored"
    score_teacher(tiny_model_dir, rollouts[1][0], index_dir, out, config)
    ds = read_trajectories(out, require_teacher=True)
    assert calls == [len(ds)]  # one engine call for the worker's 3 shards
    for row in ds:
        response = row["response_ids"]
        expected = [-float(t % 7) * m for t, m in zip(response, row["response_mask"], strict=True)]
        assert row["teacher_logprobs"] == expected
