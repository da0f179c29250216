"""Every algorithm preset compiles; the compiled IR has the expected tasks, artifact edges, GPU
requests, retries, caching, secret and PVC; the YAML reloads as a component."""

import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

from kfp import components  # noqa: E402

from components.images import CPU_IMAGE, GPU_IMAGE  # noqa: E402
from pipelines import PipelineOptions, compile_pipeline  # noqa: E402
from sdar_core.algos import get_algorithm, list_algorithms  # noqa: E402
from sdar_core.errors import ConfigError  # noqa: E402

MODEL_STAGES = ("generate-rollouts", "score-teacher", "sdar-update", "evaluate", "warmstart-sft")


def compiled(tmp_path: Path, **options) -> tuple[dict, dict, Path]:
    path = compile_pipeline(PipelineOptions(**options), tmp_path / "pipeline.yaml")
    docs = list(yaml.safe_load_all(path.read_text()))
    # no platform document at all when no task has a Kubernetes setting
    kubernetes = docs[1]["platforms"]["kubernetes"] if docs[1:] else {}
    platform = kubernetes.get("deploymentSpec", {}).get("executors", {})  # (or only a workspace)
    return docs[0], platform, path


def rounds_for(name: str) -> int:
    return 2 if get_algorithm(name).trains else 0


def tasks_of(spec: dict) -> dict:
    """Every task of the pipeline: the root's, with the exit handler's group opened."""
    tasks = {}
    for name, task in spec["root"]["dag"]["tasks"].items():
        component = spec["components"][task["componentRef"]["name"]]
        if "dag" in component:  # the exit handler's group
            tasks |= component["dag"]["tasks"]
        else:
            tasks[name] = task
    return tasks


def executor_name(task: dict) -> str:
    return task["componentRef"]["name"].replace("comp-", "exec-")


def executor(spec: dict, task: dict) -> dict:
    name = task["componentRef"]["name"].replace("comp-", "exec-")
    return spec["deploymentSpec"]["executors"][name]


@pytest.mark.parametrize("algorithm", list_algorithms())
def test_every_preset_compiles_with_the_expected_tasks(tmp_path, algorithm):
    algo = get_algorithm(algorithm)
    rounds = rounds_for(algorithm)
    spec, platform, path = compiled(tmp_path, algorithm=algorithm, rounds=rounds)
    tasks = tasks_of(spec)
    kinds = [
        t["componentRef"]["name"].removeprefix("comp-").rstrip("-0123456789")
        for t in tasks.values()
    ]
    assert kinds.count("generate-rollouts") == rounds
    assert kinds.count("sdar-update") == rounds
    assert kinds.count("score-teacher") == (rounds if algo.needs_teacher else 0)
    assert kinds.count("evaluate") == (2 if algo.trains else 1)
    assert kinds.count("index-skills") == kinds.count("start-tracking") == 1
    assert kinds.count("importer") == 2
    assert kinds.count("end-tracking") == 1  # the exit handler, never cached
    for name, task in tasks.items():
        assert task["taskInfo"]["name"]  # display name
        caching = task["cachingOptions"].get("enableCache")
        assert caching is (None if name == "end-tracking" else True)
    for name, task in tasks.items():
        if "importer" in name:
            continue
        container = executor(spec, task)["container"]
        assert container["resources"]["resourceCpuRequest"]
        assert container["resources"]["resourceMemoryRequest"]
        assert "pip install" not in " ".join(container.get("command", []))
        exec_name = task["componentRef"]["name"].replace("comp-", "exec-")
        # no secret unless asked: KFP 2.14's driver ignores `optional` on secret env
        assert "secretAsEnv" not in platform.get(exec_name, {})
    assert spec["pipelineInfo"]["name"] == f"sdar-alfworld-{algorithm}-r{rounds}".replace("_", "-")
    loaded = components.load_component_from_file(str(path))
    assert loaded.name == spec["pipelineInfo"]["name"]
    assert {"model_uri", "games_uri", "mlflow_tracking_uri", "eval_config"} <= set(
        loaded.component_spec.inputs
    )
    assert ("rollout_config" in loaded.component_spec.inputs) == (rounds > 0)


def test_sdar_rounds_chain_checkpoints_and_teacher_scores(tmp_path):
    spec, _, _ = compiled(tmp_path, algorithm="sdar", rounds=2)
    tasks = tasks_of(spec)
    by_label = {t["taskInfo"]["name"]: (name, t) for name, t in tasks.items()}

    def source(label: str, input_name: str) -> tuple[str, str]:
        artifact = by_label[label][1]["inputs"]["artifacts"][input_name]["taskOutputArtifact"]
        producer = next(lbl for lbl, (n, _) in by_label.items() if n == artifact["producerTask"])
        return producer, artifact["outputArtifactKey"]

    assert source("round 0: rollouts", "model") == ("import base model", "artifact")
    assert source("round 0: teacher scoring", "trajectories") == (
        "round 0: rollouts",
        "trajectories",
    )
    assert source("round 0: update", "trajectories") == (
        "round 0: teacher scoring",
        "scored_trajectories",
    )
    assert source("round 1: rollouts", "model") == ("round 0: update", "checkpoint")
    assert source("round 1: teacher scoring", "model") == ("round 0: update", "checkpoint")
    assert source("round 1: rollouts", "skill_index") == ("index skills", "skill_index")
    assert source("evaluate final checkpoint", "model") == ("round 1: update", "checkpoint")
    assert source("evaluate start checkpoint", "model") == ("import base model", "artifact")
    final = by_label["evaluate final checkpoint"][1]
    assert by_label["evaluate start checkpoint"][0] in final["dependentTasks"]
    assert final["inputs"]["parameters"]["round"]["runtimeValue"]["constant"] == 2
    for r in range(2):  # every update resumes the previous checkpoint, KL-anchored to the start
        update = f"round {r}: update"
        previous = (
            ("import base model", "artifact") if r == 0 else ("round 0: update", "checkpoint")
        )
        assert source(update, "model") == previous
        assert source(update, "reference") == ("import base model", "artifact")
        params = by_label[update][1]["inputs"]["parameters"]
        assert params["total_rounds"]["runtimeValue"]["constant"] == 2


def test_warm_started_rounds_take_the_warm_start_as_kl_reference(tmp_path):
    spec, _, _ = compiled(tmp_path, algorithm="grpo", rounds=3, warm_start=True)
    tasks = tasks_of(spec)
    labels = {name: t["taskInfo"]["name"] for name, t in tasks.items()}
    for r in range(3):
        task = next(t for t in tasks.values() if t["taskInfo"]["name"] == f"round {r}: update")
        edge = task["inputs"]["artifacts"]["reference"]["taskOutputArtifact"]
        assert (labels[edge["producerTask"]], edge["outputArtifactKey"]) == (
            "warm start (SFT)",
            "checkpoint",
        )


@pytest.mark.parametrize(
    ("env", "steps", "history", "mini_batch"),
    [("alfworld", 50, 2, 256), ("webshop", 15, 2, 64), ("search", 4, 4, 256)],
)
def test_cluster_defaults_are_the_authors_settings_per_env(env, steps, history, mini_batch):
    from pipelines.options import default_stage_configs

    configs = {k: json.loads(v) for k, v in default_stage_configs("cluster", env).items()}
    rollout, evaluation = configs["rollout_config"], configs["eval_config"]
    assert (rollout["env"], rollout["max_steps"], rollout["history_length"]) == (
        env,
        steps,
        history,
    )
    assert (evaluation["max_steps"], evaluation["history_length"]) == (steps, history)
    assert evaluation["decoding"] == ("greedy" if env == "search" else "sample")
    assert configs["update_config"]["mini_batch_size"] == mini_batch
    assert configs["update_config"].get("warmup_ratio") == (0.1 if env == "search" else None)


@pytest.mark.parametrize("algorithm", ["skill_prompt", "skill_grpo"])
def test_student_skill_presets_evaluate_with_the_skill_index(tmp_path, algorithm):
    spec, _, _ = compiled(tmp_path, algorithm=algorithm, rounds=rounds_for(algorithm))
    tasks = tasks_of(spec)
    labels = {name: t["taskInfo"]["name"] for name, t in tasks.items()}
    evaluations = [t for t in tasks.values() if t["taskInfo"]["name"].startswith("evaluate ")]
    assert len(evaluations) == (2 if get_algorithm(algorithm).trains else 1)
    for task in evaluations:
        edge = task["inputs"]["artifacts"]["skill_index"]["taskOutputArtifact"]
        assert (labels[edge["producerTask"]], edge["outputArtifactKey"]) == (
            "index skills",
            "skill_index",
        )
        assert task["inputs"]["parameters"]["algorithm"]["runtimeValue"]["constant"] == algorithm


def test_grpo_update_reads_rollouts_directly(tmp_path):
    spec, _, _ = compiled(tmp_path, algorithm="grpo", rounds=1)
    tasks = tasks_of(spec)
    labels = {t["taskInfo"]["name"]: n for n, t in tasks.items()}
    update = tasks[labels["round 0: update"]]
    producer = update["inputs"]["artifacts"]["trajectories"]["taskOutputArtifact"]["producerTask"]
    assert producer == labels["round 0: rollouts"]


def test_cluster_profile_requests_gpus_and_retries(tmp_path):
    spec, _, _ = compiled(tmp_path, algorithm="sdar", rounds=1, warm_start=True, num_gpus=4)
    for task in tasks_of(spec).values():
        if "importer" in task["componentRef"]["name"]:
            continue
        kind = task["componentRef"]["name"].removeprefix("comp-").rstrip("-0123456789")
        container = executor(spec, task)["container"]
        accelerator = container["resources"].get("accelerator")
        if kind in MODEL_STAGES:
            assert container["image"] == GPU_IMAGE
            assert accelerator["resourceType"] == "nvidia.com/gpu"
            assert accelerator["resourceCount"] == "4"  # every model stage uses the node's GPUs
        else:
            assert container["image"] == CPU_IMAGE and accelerator is None
        retried = kind in ("generate-rollouts", "score-teacher", "evaluate")
        assert ("retryPolicy" in task) == retried
        if retried:
            assert task["retryPolicy"]["maxRetryCount"] == 3
            assert task["retryPolicy"]["backoffFactor"] == 2.0
        if kind == "sdar-update":
            assert task["inputs"]["parameters"]["num_gpus"]["runtimeValue"]["constant"] == 4


def test_local_profile_has_no_gpu_and_one_cpu_image(tmp_path):
    spec, _, _ = compiled(tmp_path, algorithm="sdar", rounds=1, profile="local")
    for name, ex in spec["deploymentSpec"]["executors"].items():
        if "importer" in name:
            continue
        assert ex["container"]["image"] == CPU_IMAGE
        assert "accelerator" not in ex["container"]["resources"]


def test_pvc_is_mounted_only_on_the_updates(tmp_path):
    """A ReadWriteOnce volume on every task would be attached to two nodes at once (Multi-Attach
    errors); only the update (its state_dir) uses it, and the updates run one after another."""
    spec, platform, _ = compiled(
        tmp_path, algorithm="sdar", rounds=2, warm_start=True, pvc_name="sdar-data"
    )
    mounted = set()
    for task in tasks_of(spec).values():
        if "importer" in task["componentRef"]["name"]:
            continue
        mounts = platform.get(executor_name(task), {}).get("pvcMount", [])
        if mounts:
            assert len(mounts) == 1 and mounts[0]["mountPath"] == "/data"
            assert mounts[0]["pvcNameParameter"]["runtimeValue"]["constant"] == "sdar-data"
            mounted.add(task["taskInfo"]["name"])
    assert mounted == {"round 0: update", "round 1: update"}


def test_the_mlflow_secret_is_referenced_only_when_asked(tmp_path):
    spec, platform, _ = compiled(tmp_path, algorithm="grpo", rounds=1)
    assert not any("secretAsEnv" in ex for ex in platform.values())
    spec, platform, _ = compiled(tmp_path, algorithm="grpo", rounds=1, mlflow_secret="mlflow-auth")
    for task in tasks_of(spec).values():
        if "importer" in task["componentRef"]["name"]:
            continue
        (secret,) = platform[executor_name(task)]["secretAsEnv"]
        assert secret["secretName"] == "mlflow-auth"
        assert not secret.get("optional")  # named, so it must exist (on every backend alike)
        assert {m["secretKey"]: m["envVar"] for m in secret["keyToEnv"]} == {
            "username": "MLFLOW_TRACKING_USERNAME",
            "password": "MLFLOW_TRACKING_PASSWORD",
        }


@pytest.mark.parametrize("warm_start", [False, True])
def test_every_stage_that_loads_a_round_checkpoint_gets_the_base_model(tmp_path, warm_start):
    """A LoRA update writes only the adapter, naming the run's starting checkpoint as its base
    by local path: every stage that loads a checkpoint gets that artifact (KFP downloads it to the
    same path in every pod)."""
    spec, _, _ = compiled(tmp_path, algorithm="sdar", rounds=2, warm_start=warm_start)
    tasks = tasks_of(spec)
    labels = {name: t["taskInfo"]["name"] for name, t in tasks.items()}
    start = ("warm start (SFT)", "checkpoint") if warm_start else ("import base model", "artifact")
    loaders = 0
    for task in tasks.values():
        label = task["taskInfo"]["name"]
        kind = task["componentRef"]["name"].removeprefix("comp-").rstrip("-0123456789")
        if kind not in ("generate-rollouts", "score-teacher", "evaluate", "sdar-update"):
            continue
        name = "reference" if kind == "sdar-update" else "base_model"
        if label == "evaluate base model":
            start_here = ("import base model", "artifact")
        else:
            start_here = start
        edge = task["inputs"]["artifacts"][name]["taskOutputArtifact"]
        assert (labels[edge["producerTask"]], edge["outputArtifactKey"]) == start_here, label
        loaders += 1
    assert loaders == 2 * 3 + (3 if warm_start else 2)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"algorithm": "vanilla", "rounds": 2}, "does not train"),
        ({"algorithm": "sdar", "rounds": 0}, "rounds must be >= 1"),
        ({"algorithm": "sdar", "num_gpus": 0}, "num_gpus must be >= 1"),
        ({"algorithm": "sdar", "profile": "laptop"}, "unknown profile"),
        ({"algorithm": "sdar", "env": "nope"}, "unknown env 'nope'"),
        ({"algorithm": "sdar", "model_uri": "s3://b/m"}, "needs games_uri too"),
    ],
)
def test_bad_options_say_how_to_fix(tmp_path, options, message):
    with pytest.raises(ConfigError, match=message):
        compile_pipeline(PipelineOptions(**options), tmp_path / "p.yaml")
    assert not (tmp_path / "p.yaml").exists()


def test_unknown_algorithm_lists_the_presets(tmp_path):
    with pytest.raises(KeyError, match="sdar"):
        compile_pipeline(PipelineOptions(algorithm="ppo"), tmp_path / "p.yaml")


def test_sdar_compile_command_writes_yaml(tmp_path):
    from typer.testing import CliRunner

    from sdar_core.cli import app

    out = tmp_path / "grpo.yaml"
    result = CliRunner().invoke(
        app, ["compile", str(out), "--algorithm", "grpo", "--rounds", "3", "--profile", "local"]
    )
    assert result.exit_code == 0, result.output
    spec = next(yaml.safe_load_all(out.read_text()))
    assert spec["pipelineInfo"]["name"] == "sdar-alfworld-grpo-r3"


def test_the_exit_handler_ends_the_mlflow_run_however_the_pipeline_ends(tmp_path):
    spec, _, _ = compiled(tmp_path, algorithm="sdar", rounds=1)
    root = spec["root"]["dag"]["tasks"]
    closing = root["end-tracking"]
    assert closing["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"
    group = closing["dependentTasks"][0]
    assert closing["inputs"]["parameters"]["status"] == {"taskFinalStatus": {"producerTask": group}}
    assert set(root) == {"start-tracking", "end-tracking", group}
    embedded, _, _ = compiled(tmp_path, algorithm="sdar", rounds=1, exit_handler=False)
    assert "end-tracking" not in embedded["root"]["dag"]["tasks"]


@pytest.mark.parametrize(
    ("state", "status"),
    [("SUCCEEDED", "FINISHED"), ("FAILED", "FAILED"), ("CANCELED", "KILLED"), ("?", "FAILED")],
)
def test_the_exit_task_maps_kfp_states_to_mlflow_statuses(tmp_path, state, status):
    from sdar_core.run.stages import end_tracking_stage
    from sdar_core.tracking import start_run
    from sdar_core.tracking.store import client, sqlite_uri

    uri = sqlite_uri(tmp_path / "mlflow.db")
    run_id = start_run(uri, "e", run_name="r", params={})
    end_tracking_stage(uri, "e", "r", state=state)
    assert client(uri).get_run(run_id).info.status == status
    end_tracking_stage(uri, "e", "r", state="FAILED")  # a run that ended is left as it is
    assert client(uri).get_run(run_id).info.status == status


def cli(*args: str):
    from typer.testing import CliRunner

    from sdar_core.cli import app

    return CliRunner().invoke(app, list(args))


def test_compile_command_refuses_an_unknown_env(tmp_path):
    result = cli("compile", str(tmp_path / "p.yaml"), "--env", "nope")
    assert result.exit_code != 0
    assert "unknown env 'nope'" in str(result.exception)
    assert not (tmp_path / "p.yaml").exists()


def test_presets_that_do_not_train_compile_without_rounds(tmp_path):
    out = tmp_path / "vanilla.yaml"
    result = cli("compile", str(out), "--algorithm", "vanilla")
    assert result.exit_code == 0, result.output
    assert next(yaml.safe_load_all(out.read_text()))["pipelineInfo"]["name"].endswith("-r0")
    assert PipelineOptions(algorithm="sdar").rounds == 2
    assert out.stat().st_mode & 0o777 == 0o644


def test_compiled_in_model_and_data_become_parameter_defaults(tmp_path):
    out = tmp_path / "p.yaml"
    result = cli("compile", str(out), "--model", "s3://b/m", "--data", "s3://b/g")
    assert result.exit_code == 0, result.output
    inputs = next(yaml.safe_load_all(out.read_text()))["root"]["inputDefinitions"]["parameters"]
    assert inputs["model_uri"]["defaultValue"] == "s3://b/m"
    assert inputs["games_uri"]["defaultValue"] == "s3://b/g"
    # the start-tracking task's inputs (its cache key) hold both URIs
    spec = next(yaml.safe_load_all(out.read_text()))
    track = spec["root"]["dag"]["tasks"]["start-tracking"]["inputs"]["parameters"]
    assert track["model_uri"]["componentInputParameter"] == "model_uri"
    assert track["games_uri"]["componentInputParameter"] == "games_uri"


def test_help_and_version():
    from importlib.metadata import version

    assert cli("-h").exit_code == 0 and "import-model" in cli("-h").output
    assert cli("run", "-h").exit_code == 0
    result = cli("--version")
    assert result.exit_code == 0 and result.output.strip() == f"sdar {version('sdar')}"


@pytest.mark.parametrize("command", ["run", "eval", "compile", "submit", "compare"])
def test_every_help_writes_defaults_one_way(command):
    import re

    text = re.sub(r"\s+", " ", cli(command, "--help").output)
    assert "(default:" not in text


def test_gpu_placement_limits_and_only_the_stage_configs_a_preset_reads(tmp_path):
    out = tmp_path / "p.yaml"
    args = ("--gpu-node-selector", "pool=a100", "--gpu-toleration", "--algorithm", "grpo")
    result = cli("compile", str(out), *args, "--rounds", "1")
    assert result.exit_code == 0, result.output
    spec, platform = list(yaml.safe_load_all(out.read_text()))
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    rollout = executors["exec-generate-rollouts"]
    assert rollout["nodeSelector"]["labels"] == {"pool": "a100"}
    assert rollout["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert "nodeSelector" not in executors.get("exec-start-tracking", {})
    resources = spec["deploymentSpec"]["executors"]["exec-generate-rollouts"]["container"]
    # no CPU limit on GPU tasks (CFS throttling: pipelines/profiles.py); memory limited
    assert "resourceCpuLimit" not in resources["resources"]
    assert resources["resources"]["resourceCpuRequest"] == "8"
    assert resources["resources"]["resourceMemoryLimit"] == "64Gi"
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert {"rollout_config", "update_config"} <= set(params)
    assert not {"teacher_config", "sft_config"} & set(params)  # grpo: no teacher, no warm start
