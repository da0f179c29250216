"""Pods that survive on a cluster (pipelines/profiles.py), read from the compiled YAML: a
memory-backed /dev/shm on GPU tasks, a timeout on every task, no CPU limit where models or
environments run; and `sdar submit --no-cache`."""

import pytest
import yaml
from typer.testing import CliRunner

from pipelines import PipelineOptions, compile_pipeline
from pipelines.profiles import PROFILES
from sdar_core.cli import app


def compiled(tmp_path_factory, profile: str) -> tuple[dict, dict]:
    """(executors' containers, their kubernetes configs) of a one-round SDAR pipeline on
    `profile` with a warm start (every stage present)."""
    out = tmp_path_factory.mktemp(profile) / "p.yaml"
    options = PipelineOptions(rounds=1, warm_start=True, profile=profile)
    docs = list(yaml.safe_load_all(compile_pipeline(options, out).read_text()))
    executors = docs[0]["deploymentSpec"]["executors"]
    containers = {k: v["container"] for k, v in executors.items() if "container" in v}
    platform = {}
    if len(docs) > 1:
        platform = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    return containers, platform


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    return compiled(tmp_path_factory, "cluster")


def stage_of(executor: str) -> str:
    """exec-generate-rollouts-2 -> generate_rollouts"""
    name = executor.removeprefix("exec-").replace("-", "_")
    return name.rstrip("_0123456789")


def test_every_gpu_task_has_a_memory_backed_dev_shm(cluster):
    containers, platform = cluster
    gpu = [k for k, c in containers.items() if "accelerator" in c.get("resources", {})]
    assert {stage_of(k) for k in gpu} == {
        "warmstart_sft", "generate_rollouts", "score_teacher", "sdar_update", "evaluate"
    }  # fmt: skip
    for executor in gpu:
        (mount,) = platform[executor]["emptyDirMounts"]
        assert mount["mountPath"] == "/dev/shm" and mount["medium"] == "Memory", executor
        assert mount["sizeLimit"] == PROFILES["cluster"][stage_of(executor)].shm
    for executor in set(containers) - set(gpu):  # CPU tasks keep the default
        assert "emptyDirMounts" not in platform.get(executor, {}), executor


def test_every_task_has_its_stages_timeout(cluster):
    containers, platform = cluster
    for executor in containers:
        expected = PROFILES["cluster"][stage_of(executor)].timeout_s
        assert expected and int(platform[executor]["activeDeadlineSeconds"]) == expected, executor
    assert PROFILES["cluster"]["sdar_update"].timeout_s >= 3600  # hours, not a step's seconds


def test_no_cpu_limit_where_models_or_environments_run(cluster):
    containers, _ = cluster
    for executor, container in containers.items():
        resources = container["resources"]
        stage = stage_of(executor)
        if stage in ("start_tracking", "end_tracking"):  # tiny tasks keep limit = request
            assert resources["resourceCpuLimit"] == resources["resourceCpuRequest"], executor
        else:
            assert "resourceCpuLimit" not in resources, executor
            assert float(resources["resourceCpuRequest"]) >= 2
        assert resources["resourceMemoryLimit"] == resources["resourceMemoryRequest"], executor


def test_the_local_profile_has_no_shm_and_no_timeouts(tmp_path_factory):
    containers, platform = compiled(tmp_path_factory, "local")
    for executor, config in platform.items():
        assert "emptyDirMounts" not in config and "activeDeadlineSeconds" not in config, executor
    for container in containers.values():
        resources = container["resources"]
        assert resources["resourceCpuLimit"] == resources["resourceCpuRequest"]


@pytest.mark.parametrize(("flags", "caching"), [((), True), (("--no-cache",), False)])
def test_submit_no_cache_turns_caching_off(tmp_path, monkeypatch, flags, caching):
    import kfp

    calls = []

    class FakeClient:
        def __init__(self, **kwargs):
            pass

        def create_run_from_pipeline_package(self, path, **kwargs):
            calls.append(kwargs)
            return type("Run", (), {"run_id": "r-1"})()

    monkeypatch.setattr(kfp, "Client", FakeClient)
    package = compile_pipeline(PipelineOptions(algorithm="vanilla"), tmp_path / "p.yaml")
    result = CliRunner().invoke(
        app, ["submit", str(package), "--host", "http://127.0.0.1:9", *flags]
    )
    assert result.exit_code == 0, result.output
    assert "KFP run id: r-1" in result.output
    assert [c["enable_caching"] for c in calls] == [caching]
