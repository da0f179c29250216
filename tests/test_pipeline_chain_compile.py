"""Chained runs at compile time: a run splits into chunks that start at their round and carry the
run's length; a later chunk imports the previous checkpoint and the start model, continues the
chain's MLflow run and skips the start evaluation; only the last evaluates; `sdar compile` writes
the chunks and their manifest, picks the largest K that fits a Workflow budget, and refuses a K
that does not. The MLflow side: the chain's run is found by its tag and left RUNNING between
chunks."""

import json
import types
from pathlib import Path

import pytest
import yaml

from pipelines import chain as chain_module
from pipelines.chain import compile_chain, read_manifest
from pipelines.local import count_tasks
from pipelines.sdar_pipeline import PipelineOptions, last_round_of_run, split_run
from sdar_core.errors import ConfigError


def _spec(path: Path) -> dict:
    return next(yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader))


def _tasks(spec: dict) -> dict[str, dict]:
    dags = [spec["root"]["dag"]] + [c["dag"] for c in spec["components"].values() if "dag" in c]
    return {t["taskInfo"]["name"]: t for dag in dags for t in dag["tasks"].values()}


def test_a_run_splits_into_chunks_that_carry_its_length():
    run = PipelineOptions(algorithm="grpo", rounds=5, profile="local")
    chunks = split_run(run, 2)
    assert [(c.first_round, c.rounds, c.run_rounds) for c in chunks] == [
        (0, 2, 5),
        (2, 2, 5),
        (4, 1, 5),
    ]
    assert [(c.continues_run, c.ends_run) for c in chunks] == [
        (False, False),
        (True, False),
        (True, True),
    ]
    assert [c.name for c in chunks] == [
        f"sdar-alfworld-grpo-r5-rounds-{a}-{b}" for a, b in ((0, 1), (2, 3), (4, 4))
    ]
    assert split_run(run, 5) == [run] and split_run(run, None) == [run]
    assert [r for r in range(5) if last_round_of_run(chunks[1], r)] == [3]
    with pytest.raises(ConfigError, match="rounds_per_run must be >= 1, got 0"):
        split_run(run, 0)
    with pytest.raises(ConfigError, match="vanilla does not train: it cannot be chained"):
        PipelineOptions(algorithm="vanilla", rounds=0, first_round=1).check()
    with pytest.raises(ConfigError, match="total_rounds=3 is less than first_round \\+ rounds = 4"):
        PipelineOptions(rounds=2, first_round=2, total_rounds=3).check()


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> list[Path]:
    out = tmp_path_factory.mktemp("chain") / "run.yaml"
    run = PipelineOptions(algorithm="sdar", rounds=3, profile="local", warm_start=True,
                          model_uri="minio://m/base", games_uri="minio://d/games")  # fmt: skip
    return compile_chain(run, out, rounds_per_run=2)


def test_the_chunks_hand_on_checkpoint_start_model_and_mlflow_run(compiled):
    first, second, manifest = compiled
    assert [p.name for p in compiled] == ["run-1of2.yaml", "run-2of2.yaml", "run.chain.json"]
    one, two = _spec(first), _spec(second)
    params_one, params_two = (s["root"]["inputDefinitions"]["parameters"] for s in (one, two))
    assert "chain_id" in params_one and "start_model_uri" not in params_one
    assert {"chain_id", "start_model_uri"} <= params_two.keys() and "inputs_json" not in params_two
    assert "defaultValue" not in params_two["model_uri"]  # the previous chunk's checkpoint
    assert "defaultValue" not in params_two["start_model_uri"]  # the warm start's checkpoint
    assert params_two["games_uri"]["defaultValue"] == "minio://d/games"
    assert "sft_config" not in params_two  # the warm start ran in the first chunk

    tasks_one, tasks_two = _tasks(one), _tasks(two)
    assert {"warm start (SFT)", "evaluate start checkpoint", "tag MLflow run with its chain",
            "round 0: update", "round 1: update"} <= tasks_one.keys()  # fmt: skip
    assert "evaluate final checkpoint" not in tasks_one
    assert "end-chunk-tracking" in tasks_one["end MLflow run"]["componentRef"]["name"]
    assert {"continue MLflow run", "import checkpoint of round 1", "import start model",
            "round 2: update", "evaluate final checkpoint"} <= tasks_two.keys()  # fmt: skip
    assert (
        not {"evaluate start checkpoint", "warm start (SFT)", "start MLflow run"} & tasks_two.keys()
    )
    assert tasks_two["end MLflow run"]["componentRef"]["name"] == "comp-end-tracking"
    update = tasks_two["round 2: update"]["inputs"]
    assert update["parameters"]["round"]["runtimeValue"]["constant"] == 2
    assert update["parameters"]["total_rounds"]["runtimeValue"]["constant"] == 3
    assert update["artifacts"]["reference"]["taskOutputArtifact"]["producerTask"] == "importer-3"
    final = tasks_two["evaluate final checkpoint"]["inputs"]["parameters"]["round"]
    assert final["runtimeValue"]["constant"] == 3

    saved = read_manifest(manifest)
    assert saved["start_model_task"] == "warm start (SFT)"
    assert [c["checkpoint_task"] for c in saved["chunks"]] == ["round 1: update", "round 2: update"]
    assert [c["package"] for c in saved["chunks"]] == [first, second]


@pytest.mark.parametrize("exit_handler", [True, False])
def test_count_tasks_counts_each_chunk(tmp_path, exit_handler):
    from pipelines.sdar_pipeline import compile_pipeline

    run = PipelineOptions(algorithm="grpo", rounds=3, profile="local", exit_handler=exit_handler)
    for i, chunk in enumerate(split_run(run, 2)):
        tasks = _tasks(_spec(compile_pipeline(chunk, tmp_path / f"{i}.yaml")))
        groups = 1 if exit_handler else 0  # the exit handler's DAG is a task of the root
        assert count_tasks(chunk) == len(tasks) - groups, chunk.name


def _fake_estimator(per_round: int, fixed: int, budget: int):
    """An estimator whose size is exact in the rounds (the real one: pipelines/argo_size.py)."""

    def estimate(path) -> int:
        updates = [n for n in _tasks(_spec(Path(path))) if n.endswith(": update")]
        return fixed + per_round * len(updates)

    return types.SimpleNamespace(estimate_workflow_bytes=estimate, WORKFLOW_BUDGET_BYTES=budget)


def test_compile_picks_the_largest_k_that_fits_and_refuses_one_that_does_not(tmp_path, monkeypatch):
    run = PipelineOptions(algorithm="grpo", rounds=7, profile="local")
    fake = _fake_estimator(per_round=100, fixed=1000, budget=1350)  # fits 3 rounds, not 4
    monkeypatch.setattr(chain_module, "_estimator", lambda: fake)
    out = tmp_path / "run.yaml"
    out.write_text("an earlier compile of the whole run")
    written = compile_chain(run, out)
    assert [p.name for p in written] == [
        "run-1of3.yaml",
        "run-2of3.yaml",
        "run-3of3.yaml",
        "run.chain.json",
    ]
    assert not out.exists()  # the folder holds one compiled run
    assert json.loads(written[-1].read_text())["rounds_per_run"] == 3
    with pytest.raises(
        ConfigError,
        match="run-1of2.yaml: .* over the 1,350-byte budget .*--rounds-per-run 3 or less",
    ):
        compile_chain(run, out, rounds_per_run=4)
    monkeypatch.setattr(chain_module, "_estimator", lambda: None)
    assert [p.name for p in compile_chain(run, out, rounds_per_run=None)] == ["run.yaml"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.yaml"]  # stale chunks removed


def test_the_chains_mlflow_run_is_found_by_tag_and_stays_running_between_chunks(tmp_path):
    from sdar_core.run.stages import continue_chain_stage, end_tracking_stage, join_chain_stage
    from sdar_core.tracking import start_run
    from sdar_core.tracking.store import client

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    with pytest.raises(ConfigError, match="no MLflow run of chain 'c1' in experiment 'e'"):
        continue_chain_stage(uri, "e", "c1")
    run_id = start_run(uri, "e", run_name="r", params={})
    start_run(uri, "e", run_name="r", params={})  # another run of the same name, not the chain's
    join_chain_stage(uri, run_id, "c1")
    end_tracking_stage(uri, "e", "r", state="SUCCEEDED", ends_run=False)
    assert client(uri).get_run(run_id).info.status == "RUNNING"
    end_tracking_stage(uri, "e", "r", state="FAILED", ends_run=False)
    assert client(uri).get_run(run_id).info.status == "FAILED"
    assert continue_chain_stage(uri, "e", "c1") == run_id  # a resubmitted chunk continues it
    assert client(uri).get_run(run_id).info.status == "RUNNING"
