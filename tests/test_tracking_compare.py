"""MLflow tracking (StageTracker, start_run) and `sdar compare` on small synthetic runs."""

import csv
import math

import pytest

from sdar_core.errors import ConfigError
from sdar_core.tracking import StageTracker, compare_runs, flatten_metrics, start_run
from sdar_core.tracking.store import client, prepare_experiment, sqlite_uri

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# run: (algorithm, seed, rollout success per round, gate mean per round, eval start/final)
RUNS = [
    ("sdar", 0, [0.25, 0.5], [0.40, 0.45], (0.25, 0.50)),
    ("sdar", 1, [0.25, 0.75], [0.42, 0.47], (0.25, 0.75)),
    ("grpo", 0, [0.25, 0.25], None, (0.25, 0.25)),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A sqlite store with three finished runs (two sdar seeds, one grpo)."""
    folder = tmp_path_factory.mktemp("mlflow")
    uri = sqlite_uri(folder / "mlflow.db")
    prepare_experiment(uri, "cmp", artifact_root=folder / "mlruns")
    ids = []
    for algorithm, seed, success, gates, (start, final) in RUNS:
        run_id = start_run(
            uri,
            "cmp",
            run_name=f"{algorithm}-{seed}",
            params={"algorithm": algorithm, "seed": seed, "rollout": {"n": 4}},
        )
        for rnd, value in enumerate(success):
            with StageTracker(uri, run_id, stage="rollout", round=rnd) as tracker:
                tracker.log({"success_rate": value})
            if gates is not None:
                StageTracker(uri, run_id, stage="update", round=rnd).log(
                    {"sdar": {"gate_mean": gates[rnd], "gate_active_ratio": gates[rnd] / 2}}
                )
        StageTracker(uri, run_id, stage="eval", round=0).log({"success": {"all": start}})
        StageTracker(uri, run_id, stage="eval", round=len(success)).log({"success": {"all": final}})
        client(uri).set_terminated(run_id)
        ids.append(run_id)
    return uri, ids


def test_flatten_metrics_keeps_finite_numbers_only():
    summary = {
        "a": 1,
        "b": True,
        "c": {"d": 2.5, "e": {"f": 3}},
        "history": [1, 2],
        "s": "x",
        "config": {"lr": 1.0},
        "nan": math.nan,
    }
    assert flatten_metrics(summary, prefix="update/") == {
        "update/a": 1.0,
        "update/b": 1.0,
        "update/c/d": 2.5,
        "update/c/e/f": 3.0,
    }


def test_stage_tracker_logs_with_step_round_and_duration(store):
    uri, ids = store
    mlflow_client = client(uri)
    history = mlflow_client.get_metric_history(ids[0], "rollout/success_rate")
    assert [(p.step, p.value) for p in history] == [(0, 0.25), (1, 0.5)]
    durations = mlflow_client.get_metric_history(ids[0], "rollout/duration_s")
    assert [p.step for p in durations] == [0, 1] and all(p.value >= 0 for p in durations)
    # update stages were logged without the context manager: no duration
    assert "update/duration_s" not in mlflow_client.get_run(ids[0]).data.metrics
    params = mlflow_client.get_run(ids[0]).data.params
    assert params["algorithm"] == "sdar" and params["rollout.n"] == "4"


def test_failed_stage_logs_no_duration(store):
    uri, _ = store
    run_id = start_run(uri, "cmp-failures", run_name="x", params={})
    with pytest.raises(RuntimeError), StageTracker(uri, run_id, stage="teacher", round=0):
        raise RuntimeError("boom")
    assert client(uri).get_run(run_id).data.metrics == {}


def test_compare_groups_seeds_into_mean_and_interval(store, tmp_path):
    uri, ids = store
    result = compare_runs(uri, tmp_path / "out", experiment="cmp")
    rows = {row["algorithm"]: row for row in result.rows}
    assert set(rows) == {"sdar", "grpo"}
    sdar = rows["sdar"]
    assert sdar["seeds"] == 2
    assert sdar["final_success"] == pytest.approx(0.625)
    # t interval over [0.50, 0.75]: mean 0.625, sd 0.125*sqrt(2), half = 12.706 * sd / sqrt(2)
    half = 12.706 * 0.125
    assert sdar["final_success_ci95"] == f"[{0.625 - half:.3f}, {0.625 + half:.3f}]"
    assert sdar["start_success"] == pytest.approx(0.25)
    assert sdar["last_rollout_success"] == pytest.approx(0.625)
    assert sdar["last_gate_mean"] == pytest.approx(0.46)
    assert sdar["last_gate_active_ratio"] == pytest.approx(0.23)
    grpo = rows["grpo"]
    assert grpo["seeds"] == 1 and grpo["final_success_ci95"] is None
    assert grpo["last_gate_mean"] is None
    with open(tmp_path / "out" / "comparison.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["algorithm"] for r in table] == ["grpo", "sdar"]
    assert float(table[1]["final_success"]) == pytest.approx(0.625)
    assert "| sdar | 2 |" in (tmp_path / "out" / "comparison.md").read_text()
    for name in ("success_per_round.png", "gate_statistics.png"):
        assert (tmp_path / "out" / name).read_bytes()[:8] == PNG_MAGIC
    logged = client(uri).list_artifacts(result.run_id, "comparison")
    assert {a.path.split("/")[-1] for a in logged} == {
        "comparison.csv",
        "comparison.md",
        "success_per_round.png",
        "gate_statistics.png",
    }
    tags = client(uri).get_run(result.run_id).data.tags
    assert set(tags["sdar.comparison_of"].split(",")) == set(ids)


def test_compare_by_run_ids_without_gates_skips_the_gate_plot(store, tmp_path):
    uri, ids = store
    result = compare_runs(uri, tmp_path / "out", run_ids=[ids[2]])
    assert [row["algorithm"] for row in result.rows] == ["grpo"]
    # logged as the help says: into the experiment of the run compared
    comparison = client(uri).get_run(result.run_id)
    assert comparison.info.experiment_id == client(uri).get_run(ids[2]).info.experiment_id
    names = {p.name for p in result.files}
    assert "success_per_round.png" in names and "gate_statistics.png" not in names


def test_compare_needs_runs_or_an_experiment(store, tmp_path):
    uri, ids = store
    with pytest.raises(ConfigError, match="exactly one"):
        compare_runs(uri, tmp_path, run_ids=ids, experiment="cmp")
    with pytest.raises(ConfigError, match="no MLflow experiment named 'nope'"):
        compare_runs(uri, tmp_path, experiment="nope")


def test_compare_leaves_out_runs_that_did_not_finish_unless_asked(store, tmp_path):
    uri, _ = store
    statuses = {}
    for seed, status in enumerate(["FINISHED", "KILLED", "RUNNING", "FAILED"]):
        run_id = start_run(
            uri, "cmp-unfinished", run_name=f"s{seed}", params={"algorithm": "sdar", "seed": seed}
        )
        StageTracker(uri, run_id, stage="eval", round=1).log({"success": {"all": 0.5}})
        if status != "RUNNING":  # a SIGKILLed run stays RUNNING
            client(uri).set_terminated(run_id, status=status)
        statuses[run_id] = status
    result = compare_runs(uri, tmp_path / "a", experiment="cmp-unfinished")
    assert result.rows[0]["seeds"] == 1
    assert sorted(result.left_out) == sorted(
        f"{run_id} ({status})" for run_id, status in statuses.items() if status != "FINISHED"
    )
    everything = compare_runs(uri, tmp_path / "b", experiment="cmp-unfinished", log_to="other",
                              include_unfinished=True)  # fmt: skip
    assert everything.rows[0]["seeds"] == 4 and everything.left_out == []
    killed = [run_id for run_id, status in statuses.items() if status == "KILLED"]
    with pytest.raises(ConfigError, match="none of the 1 runs finished .*--include-unfinished"):
        compare_runs(uri, tmp_path / "c", run_ids=killed)


def test_compare_command_refuses_a_missing_store(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from sdar_core.cli import app

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["compare", "--experiment", "sdar"])
    assert isinstance(result.exception, ConfigError)
    assert str(tmp_path / "runs" / "embedded" / "mlflow.db") in str(result.exception)
    assert not (tmp_path / "runs").exists()  # no empty store was created


def _pipeline_run(uri, experiment, *, seed, started_ms, final=None, status="FINISHED"):
    """A finished sdar pipeline run of `seed` that started at `started_ms`."""
    mlflow_client = client(uri)
    experiment_id = prepare_experiment(uri, experiment)
    run = mlflow_client.create_run(
        experiment_id, start_time=started_ms, tags={"sdar.pipeline_run": "true"}
    )
    run_id = run.info.run_id
    mlflow_client.log_param(run_id, "algorithm", "sdar")
    mlflow_client.log_param(run_id, "seed", str(seed))
    if final is not None:
        mlflow_client.log_metric(run_id, "eval/success/all", final, step=1)
    mlflow_client.set_terminated(run_id, status=status)
    return run_id


def test_compare_counts_a_repeated_seed_once_and_says_which_run_it_set_aside(store, tmp_path):
    # two FINISHED runs of sdar seed 0 (a --no-resume re-run, or two runs that raced on one
    # out-dir) and one of seed 1: two seeds, the later seed-0 run kept
    uri, _ = store
    first = _pipeline_run(uri, "cmp-dup", seed=0, started_ms=2000, final=0.25)
    again = _pipeline_run(uri, "cmp-dup", seed=0, started_ms=3000, final=0.5)
    other = _pipeline_run(uri, "cmp-dup", seed=1, started_ms=1000, final=0.75)
    result = compare_runs(uri, tmp_path / "out", experiment="cmp-dup")
    (row,) = result.rows
    assert row["seeds"] == 2
    assert row["final_success"] == pytest.approx(0.625)  # mean of 0.5 and 0.75, not of three
    half = 12.706 * 0.125  # the two-seed t interval, as in the test above
    assert row["final_success_ci95"] == f"[{0.625 - half:.3f}, {0.625 + half:.3f}]"
    assert set(row["runs"].split()) == {again, other}
    assert result.duplicates == [
        f"run {first} (sdar, seed 0) set aside: run {again} is a later run of the same "
        "algorithm and seed"
    ]
    # by run ids too; a finished run outranks a later unfinished one under include_unfinished
    killed = _pipeline_run(uri, "cmp-dup", seed=0, started_ms=4000, status="KILLED")
    chosen = compare_runs(
        uri, tmp_path / "ids", run_ids=[first, again, killed], include_unfinished=True
    )
    assert chosen.rows[0]["seeds"] == 1 and chosen.rows[0]["runs"] == again
    assert len(chosen.duplicates) == 2
