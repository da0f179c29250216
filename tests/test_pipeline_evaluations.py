"""The evaluations besides start and final: the checkpoint of every `eval_every`-th update
(where they sit in the graph, chained runs included, and that they extend the `eval/...` curve at
step = round) and the start checkpoint with the skills in its prompt (`ceiling`: its own series,
skills on whatever the preset, a row of the success table, on by default only where it means
something). The kfp.local run that checks both end to end is in test_pipeline_local_evaluations.py.
"""

import json
from pathlib import Path

import pytest
import yaml

from pipelines import PipelineOptions, compile_pipeline
from pipelines.local import count_tasks
from pipelines.options import eval_rounds, split_run
from sdar_core.errors import ConfigError
from sdar_core.run import RunConfig
from sdar_core.run.report import ceiling_line, load_evaluations, success_table
from sdar_core.run.stages import Tracking, eval_series, evaluate_stage, start_tracking_stage
from sdar_core.tracking import compare_runs
from sdar_core.tracking.store import client, prepare_experiment, sqlite_uri


def _evaluations(tmp_path: Path, **options) -> tuple[dict, dict]:
    """{display name: evaluate task} of the compiled pipeline, and every task by display name."""
    path = compile_pipeline(PipelineOptions(profile="local", **options), tmp_path / "p.yaml")
    spec = next(yaml.safe_load_all(path.read_text()))
    tasks = {}
    for name, task in spec["root"]["dag"]["tasks"].items():
        component = spec["components"][task["componentRef"]["name"]]
        tasks |= component["dag"]["tasks"] if "dag" in component else {name: task}
    by_display = {t["taskInfo"]["name"]: (name, t) for name, t in tasks.items()}
    evaluations = {d: nt for d, nt in by_display.items() if d.startswith("evaluate ")}
    return evaluations, by_display


def _constant(task: dict, name: str):
    return task["inputs"]["parameters"][name]["runtimeValue"]["constant"]


def _producer(by_display: dict, task: dict, artifact: str) -> str:
    source = task["inputs"]["artifacts"][artifact]["taskOutputArtifact"]["producerTask"]
    return next(d for d, (n, _) in by_display.items() if n == source)


def test_eval_every_evaluates_every_kth_update_but_the_last(tmp_path):
    evaluations, by_display = _evaluations(tmp_path, algorithm="sdar", rounds=5, eval_every=2)
    rounds = {
        _constant(t, "label"): (_constant(t, "round"), _producer(by_display, t, "model"))
        for _, t in evaluations.values()
    }
    assert rounds == {
        "start": (0, "import base model"),
        "round-2": (2, "round 1: update"),  # round n is the checkpoint of the n-th update
        "round-4": (4, "round 3: update"),
        "final": (5, "round 4: update"),
    }
    final = evaluations["evaluate final checkpoint"][1]
    others = {n for d, (n, _) in evaluations.items() if d != "evaluate final checkpoint"}
    assert others <= set(final["dependentTasks"])  # its plots read every other evaluation
    # every 5th of 5 rounds: the final evaluation covers it, nothing is added
    assert eval_rounds(PipelineOptions(algorithm="grpo", rounds=5, eval_every=5)) == []
    assert eval_rounds(PipelineOptions(algorithm="grpo", rounds=5)) == []


def test_eval_every_in_chained_runs_counts_the_runs_rounds(tmp_path):
    run = PipelineOptions(algorithm="grpo", rounds=7, eval_every=3, profile="local")
    chunks = split_run(run, 4)
    assert [eval_rounds(c) for c in chunks] == [[3], [6]]  # rounds 0-3, 4-6 of one run
    # rounds 0-1, 2-3, 4-5, 6: updates 1-2, 3-4, 5-6, 7 (the last, left to the final evaluation)
    assert [eval_rounds(c) for c in split_run(run, 2)] == [[], [3], [6], []]
    evaluations, by_display = _evaluations(
        tmp_path, algorithm="grpo", rounds=3, first_round=4, total_rounds=7, eval_every=3
    )
    # the last chunk: no start evaluation, round 6's, the final one (round 7)
    labels = {_constant(t, "label"): _constant(t, "round") for _, t in evaluations.values()}
    assert labels == {"round-6": 6, "final": 7}
    sixth = evaluations["evaluate checkpoint of round 6"][1]
    assert _producer(by_display, sixth, "model") == "round 5: update"


def test_count_tasks_counts_the_extra_evaluations(tmp_path):
    for i, options in enumerate(
        [
            PipelineOptions(
                algorithm="sdar", rounds=3, eval_every=1, ceiling=True, profile="local"
            ),
            PipelineOptions(
                algorithm="grpo",
                rounds=2,
                first_round=2,
                total_rounds=6,
                eval_every=2,
                ceiling=True,
                profile="local",
            ),
        ]  # fmt: skip
    ):
        path = compile_pipeline(options, tmp_path / f"{i}.yaml")
        spec = next(yaml.safe_load_all(path.read_text()))
        groups = [c["dag"] for c in spec["components"].values() if "dag" in c]
        tasks = [t for dag in [spec["root"]["dag"], *groups] for t in dag["tasks"]]
        assert count_tasks(options) == len(tasks) - len(groups), options.name  # not the group


def test_the_ceiling_evaluates_the_start_checkpoint_once_more(tmp_path):
    evaluations, by_display = _evaluations(tmp_path, algorithm="sdar", rounds=1, ceiling=True)
    name, ceiling = evaluations["evaluate start checkpoint, skills in prompt (ceiling)"]
    assert (_constant(ceiling, "label"), _constant(ceiling, "round")) == ("ceiling", 0)
    assert _producer(by_display, ceiling, "model") == "import base model"
    assert name in evaluations["evaluate final checkpoint"][1]["dependentTasks"]
    plain, _ = _evaluations(tmp_path / "plain", algorithm="sdar", rounds=1)
    assert set(plain) == {"evaluate start checkpoint", "evaluate final checkpoint"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"algorithm": "grpo", "eval_every": 0}, "eval_every must be >= 1"),
        ({"algorithm": "grpo", "eval_every": 1.0}, "eval_every must be a whole number"),
        ({"algorithm": "skill_grpo", "ceiling": True}, "its start evaluation is the ceiling"),
    ],
)
def test_bad_evaluation_options_say_how_to_fix(options, message):
    with pytest.raises(ConfigError, match=message):
        PipelineOptions(**options).check()


def test_run_config_turns_the_ceiling_on_where_the_teacher_reads_skills(tmp_path):
    def ceiling(**fields) -> bool:
        return RunConfig(out_dir=tmp_path, **fields).ceiling

    assert ceiling() is True  # the miniature, sdar
    assert ceiling(world="miniature2", algorithm="grpo_opsd") is True
    assert ceiling(algorithm="grpo") is False  # no teacher
    assert ceiling(algorithm="vanilla", rounds=0) is False  # does not train
    assert ceiling(world="alfworld") is False
    assert ceiling(algorithm="grpo", ceiling=True) is True  # asked for
    # pydantic wraps the ConfigError raised in the validator; the fix stays in the message
    with pytest.raises(ValueError, match="its start evaluation is the ceiling"):
        RunConfig(out_dir=tmp_path, algorithm="skill_prompt", rounds=0, ceiling=True)
    with pytest.raises(ValueError, match="eval_every must be >= 1"):
        RunConfig(out_dir=tmp_path, eval_every=0)
    from pipelines.local import options_for

    options = options_for(RunConfig(out_dir=tmp_path, eval_every=2, rounds=4))
    assert (options.eval_every, options.ceiling) == (2, True)
    assert options_for(RunConfig(out_dir=tmp_path, algorithm="grpo")).eval_every is None


def test_evaluations_land_in_their_series_and_the_table(tmp_path, monkeypatch):
    uri = sqlite_uri(tmp_path / "mlflow.db")
    prepare_experiment(uri, "evals", artifact_root=tmp_path / "mlruns")
    successes = {"start": 0.5, "ceiling": 1.0, "round-1": 0.625, "final": 0.75}
    seen = {}

    def fake_evaluate(model_dir, games_dir, out_path, config, *, skills_index_dir=None):
        label = model_dir  # the fake reads the checkpoint's name as its label
        seen[label] = config.student_sees_skills
        metrics = {"success/all": successes[label], "success/pick": successes[label]}
        results = {"config": {}, "metrics": metrics, "episodes": []}
        Path(out_path).write_text(json.dumps(results))
        return results

    monkeypatch.setattr("sdar_core.evaluation.memo.evaluate", fake_evaluate)  # the stage calls it
    inputs = {"model_uri": "model", "data_uri": "data"}
    params = {"algorithm": "sdar", "rollout_config": {"seed": 0}}
    run_id = start_tracking_stage(uri, "evals", "series", params, inputs=inputs, profile="local")
    tracking = Tracking(uri, run_id)
    for label, round in (("start", 0), ("ceiling", 0), ("round-1", 1), ("final", 2)):
        evaluate_stage(
            label, "games", str(tmp_path / f"{label}.json"), "{}", algorithm="sdar",
            label=label, round=round, tracking=tracking, index_dir=str(tmp_path / "index"),
        )  # fmt: skip
    assert seen == {"start": False, "ceiling": True, "round-1": False, "final": False}
    mlflow_client = client(uri)

    def points(key):
        return [(p.step, p.value) for p in mlflow_client.get_metric_history(run_id, key)]

    assert points("eval/success/all") == [(0, 0.5), (1, 0.625), (2, 0.75)]  # a curve
    assert points("eval_ceiling/success/all") == [(0, 1.0)]
    assert eval_series("ceiling") == "eval_ceiling" and eval_series("round-3") == "eval"
    (row,) = compare_runs(uri, tmp_path / "cmp", run_ids=[run_id]).rows
    assert (row["start_success"], row["final_success"]) == (0.5, 0.75)

    from sdar_core.tracking.store import run_store

    evaluations = load_evaluations(run_store(uri), run_id)
    assert list(evaluations) == ["start", "ceiling", "round-1", "final"]
    table = {r["task_type"]: r for r in success_table(run_store(uri), run_id, evaluations)}
    assert table["all"] == {
        "task_type": "all", "start": 0.5, "ceiling": 1.0, "round-1": 0.625, "final": 0.75,
    }  # fmt: skip
    assert ceiling_line(evaluations) == (
        "start, skills in prompt (teacher's ceiling): held-out success 1.000 (without skills 0.500)"
    )
    assert ceiling_line({"start": evaluations["start"]}) is None


def test_evaluations_are_ordered_by_checkpoint():
    class Store:
        labels = ["final", "round-10", "round-2", "ceiling", "start", "base", "other"]

        def list_artifacts(self, run_id, folder):
            return [f"{folder}/{label}.json" for label in self.labels] + [f"{folder}/x.png"]

        def read_text(self, run_id, path):
            return "{}"

    order = list(load_evaluations(Store(), "run"))
    assert order == ["base", "start", "ceiling", "round-2", "round-10", "final", "other"]


def test_sdar_run_prints_the_ceiling_and_passes_the_flags(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import pipelines.local
    from sdar_core.cli import app

    seen = []

    def fake_run_local(config):
        seen.append(config)
        rows = [{"task_type": "all", "start": 0.5, "ceiling": 1.0, "final": 0.75}]
        line = "start, skills in prompt (teacher's ceiling): held-out success 1.000"
        return pipelines.local.LocalRunResult(
            "rid", f"sqlite:///{tmp_path}/x.db", rows, 1.0, 10.0, {}, 5, ceiling=line
        )

    monkeypatch.setattr(pipelines.local, "run_local", fake_run_local)
    runner = CliRunner()
    result = runner.invoke(app, ["run", "--out-dir", str(tmp_path), "--eval-every", "2"])
    assert result.exit_code == 0, result.output
    assert "start, skills in prompt (teacher's ceiling): held-out success 1.000" in result.output
    assert "ceiling" in result.output.split("MLflow run id")[0]  # the table's column
    result = runner.invoke(app, ["run", "--out-dir", str(tmp_path), "--no-ceiling"])
    assert result.exit_code == 0, result.output
    assert [(c.eval_every, c.ceiling) for c in seen] == [(2, True), (None, False)]


def test_sdar_compile_takes_the_evaluation_flags(tmp_path):
    from typer.testing import CliRunner

    from sdar_core.cli import app

    out = tmp_path / "p.yaml"
    args = ["compile", str(out), "--algorithm", "sdar", "--rounds", "3", "--profile", "local"]
    result = CliRunner().invoke(app, [*args, "--eval-every", "1", "--ceiling"])
    assert result.exit_code == 0, result.output
    spec = next(yaml.safe_load_all(out.read_text()))
    groups = [c["dag"] for c in spec["components"].values() if "dag" in c]
    tasks = [t for dag in [spec["root"]["dag"], *groups] for t in dag["tasks"].values()]
    labels = sorted(_constant(t, "label") for t in tasks if "label" in t["inputs"]["parameters"])
    assert labels == ["ceiling", "final", "round-1", "round-2", "start"]
