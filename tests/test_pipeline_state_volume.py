"""Where the compiled pipeline keeps the trainer state (issue 20, item 2): the cluster profile's
updates on the run's KFP workspace (the run's last update hands the state on in its checkpoint),
a PVC's updates on the PVC in every round; checkpoints are bfloat16 weights; rollouts, teacher
and evaluation take only the checkpoint artifacts and never the volume. And the update stage
keys the state folder by the MLflow run id."""

import json
from pathlib import Path

import pytest
import yaml

pytest.importorskip("kfp")

from kfp import dsl  # noqa: E402

from pipelines import PipelineOptions, compile_pipeline  # noqa: E402
from sdar_core.run.stages import Tracking, update_stage  # noqa: E402
from tests.test_pipeline_compile import tasks_of  # noqa: E402


def _compile(tmp_path: Path, **options) -> tuple[dict, dict]:
    path = compile_pipeline(PipelineOptions(**options), tmp_path / "p.yaml")
    docs = list(yaml.safe_load_all(path.read_text()))
    return docs[0], (docs[1]["platforms"]["kubernetes"] if docs[1:] else {})


def _volume_inputs(spec: dict) -> dict[str, str | None]:
    """Each update task's state_volume input (None: not given), by display name."""
    found = {}
    for task in tasks_of(spec).values():
        if task["componentRef"]["name"].startswith("comp-sdar-update"):
            given = task["inputs"]["parameters"].get("state_volume")
            found[task["taskInfo"]["name"]] = given and given["runtimeValue"]["constant"]
    return found


def test_cluster_updates_keep_the_state_on_the_runs_workspace(tmp_path):
    spec, platform = _compile(tmp_path, algorithm="sdar", rounds=3)
    assert platform["pipelineConfig"]["workspace"]["size"] == "256Gi"
    assert _volume_inputs(spec) == {
        "round 0: update": dsl.WORKSPACE_PATH_PLACEHOLDER,
        "round 1: update": dsl.WORKSPACE_PATH_PLACEHOLDER,
        "round 2: update": None,  # the workspace ends with the run: this state leaves in the
    }  # checkpoint, for a next run of the chain
    defaults = spec["root"]["inputDefinitions"]["parameters"]
    update_config = json.loads(defaults["update_config"]["defaultValue"])
    assert update_config["weights_dtype"] == "bfloat16" and "state_dir" not in update_config
    tasks = tasks_of(spec)
    weights_only = {
        key for key, task in tasks.items()
        if task["componentRef"]["name"].startswith("comp-sdar-update")
        and "state_volume" in task["inputs"]["parameters"]
    }  # fmt: skip
    fed = 0
    for task in tasks.values():  # only the updates name the volume
        name = task["componentRef"]["name"]
        if not name.startswith("comp-sdar-update"):
            assert "state_volume" not in task.get("inputs", {}).get("parameters", {}), name
        if name.startswith(("comp-generate-rollouts", "comp-score-teacher")):
            producer = task["inputs"]["artifacts"]["model"].get("taskOutputArtifact")
            if producer and not producer["producerTask"].startswith("importer"):
                # rounds 1 and 2 load a checkpoint that holds no optimizer state
                assert producer["producerTask"] in weights_only
                fed += 1
    assert fed == 4  # rollouts and teacher of rounds 1 and 2


def test_a_recipe_sizes_the_workspace(tmp_path):
    from pipelines.recipe import recipe_options
    from tests.test_recipes import RECIPE

    recipe = json.loads(RECIPE.read_text()) | {"workspace_size": "512Gi", "rounds": 2}
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe))
    options = recipe_options(path, algorithm="grpo")
    spec, platform = _compile(tmp_path, **{
        f: getattr(options, f) for f in ("algorithm", "rounds", "workspace_size", "num_gpus")
    })  # fmt: skip
    assert platform["pipelineConfig"]["workspace"]["size"] == "512Gi"
    assert _volume_inputs(spec)["round 0: update"] == dsl.WORKSPACE_PATH_PLACEHOLDER


def test_a_pvc_keeps_the_state_in_every_round_and_no_workspace_is_asked(tmp_path):
    spec, platform = _compile(tmp_path, algorithm="grpo", rounds=2, pvc_name="sdar-data")
    assert "pipelineConfig" not in platform
    assert set(_volume_inputs(spec).values()) == {"/data"}


@pytest.mark.parametrize("options", [{"profile": "local"}, {"workspace_size": None}])
def test_without_a_volume_the_state_travels_in_the_checkpoints(tmp_path, options):
    spec, platform = _compile(tmp_path, algorithm="grpo", rounds=2, **options)
    assert "pipelineConfig" not in platform
    assert set(_volume_inputs(spec).values()) == {None}


def test_update_stage_keys_the_state_folder_by_the_mlflow_run(tmp_path, monkeypatch):
    calls = []

    def fake_update(model_dir, trajectories_dir, out_dir, config, *, ref_model_dir):
        calls.append(config.state_dir)
        return {}

    monkeypatch.setattr("sdar_core.train.sdar_update", fake_update)
    monkeypatch.setattr(Tracking, "stage", lambda self, stage, round: _NullTracker())
    tracking = Tracking("sqlite:///unused.db", "run-abc")
    common = dict(algorithm="grpo", round=0, total_rounds=2, num_gpus=1, tracking=tracking)
    update_stage("m", "s", "t", "o", "{}", state_volume="/kfp-workspace", **common)
    update_stage("m", "s", "t", "o", '{"state_dir": "/mine"}', state_volume="/data", **common)
    update_stage("m", "s", "t", "o", "{}", **common)
    assert calls == [Path("/kfp-workspace/trainer-state/run-abc"), Path("/mine/run-abc"), None]


class _NullTracker:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def log(self, metrics):
        return metrics
