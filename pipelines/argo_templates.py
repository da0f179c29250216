"""The templates every KFP v2 Workflow shares, as argocompiler writes them (kubeflow/pipelines
backend/src/v2/compiler/argocompiler: container.go, dag.go, importer.go, security_context.go),
for pipelines/argo_size.py. Their text depends only on the pipeline's name and on whether a task
retries; the backend's default images, service addresses and settings are assumed (no proxy, no
custom CA bundle, no run-as-user defaults, log level 1, caching on).
"""

from __future__ import annotations

from typing import Any

__all__ = ["RETRY_PARAMS", "container_driver", "container_executor", "dag_driver", "importer"]

_DRIVER_IMAGE = "ghcr.io/kubeflow/kfp-driver:latest"
_LAUNCHER_IMAGE = "ghcr.io/kubeflow/kfp-launcher:latest"
_ML_PIPELINE = ("ml-pipeline.kubeflow.svc.cluster.local", "8887")
_MLMD = ("metadata-grpc-service.kubeflow.svc.cluster.local", "8080")
_SCRATCH = [
    ("kfp-launcher", "/kfp-launcher"),
    ("gcs-scratch", "/gcs"),
    ("s3-scratch", "/s3"),
    ("minio-scratch", "/minio"),
    ("dot-local-scratch", "/.local"),
    ("dot-cache-scratch", "/.cache"),
    ("dot-config-scratch", "/.config"),
]


def _common_args() -> list[str]:
    return [
        "--http_proxy", "", "--https_proxy", "", "--no_proxy", "",
        "--ml_pipeline_server_address", _ML_PIPELINE[0],
        "--ml_pipeline_server_port", _ML_PIPELINE[1],
        "--mlmd_server_address", _MLMD[0], "--mlmd_server_port", _MLMD[1],
        "--cache_disabled=false", "--log_level", "1", "--publish_logs", "true",
        "--ml_pipeline_tls_enabled=false", "--metadata_tls_enabled=false",
        "--ca_cert_path", "",
    ]  # fmt: skip


def _run_args(pipeline: str) -> list[str]:
    return [
        "--pipeline_name", pipeline, "--run_id", "{{workflow.uid}}",
        "--run_name", "{{workflow.name}}", "--run_display_name", "",
        "--pipeline_job_create_time_utc", "{{workflow.creationTimestamp}}",
    ]  # fmt: skip


def container_driver(pipeline: str) -> dict:
    """system-container-driver: resolves a container task's inputs, decides on the cache and
    writes the pod-spec patch of its executor."""
    io = [
        "--dag_execution_id", _inp("parent-dag-id"), "--component", _inp("component"),
        "--task", _inp("task"), "--task_name", _inp("task-name"),
        "--container", _inp("container"), "--iteration_index", _inp("iteration-index"),
        "--cached_decision_path", _out("cached-decision"),
        "--pod_spec_patch_path", _out("pod-spec-patch"),
        "--condition_path", _out("condition"),
        "--kubernetes_config", _inp("kubernetes-config"),
    ]  # fmt: skip
    args = ["--type", "CONTAINER"] + _run_args(pipeline) + io + _common_args()
    inputs = [{"name": n} for n in ("component", "task", "container", "task-name")]
    inputs += [
        {"name": "parent-dag-id"},
        {"default": "-1", "name": "iteration-index"},
        {"default": "", "name": "kubernetes-config"},
    ]
    outputs = [
        _output("pod-spec-patch", ""),
        {"default": "false"} | _output("cached-decision", "false"),
        _output("condition", "true"),
    ]
    return _driver_template(args, inputs, outputs, env=True)


def dag_driver(pipeline: str) -> dict:
    """system-dag-driver: opens a DAG's execution (the root's takes the runtime config)."""
    io = [
        "--dag_execution_id", _inp("parent-dag-id"), "--component", _inp("component"),
        "--task", _inp("task"), "--task_name", _inp("task-name"),
        "--runtime_config", _inp("runtime-config"),
        "--iteration_index", _inp("iteration-index"),
        "--execution_id_path", _out("execution-id"),
        "--iteration_count_path", _out("iteration-count"),
        "--condition_path", _out("condition"),
    ]  # fmt: skip
    args = ["--type", _inp("driver-type")] + _run_args(pipeline) + io + _common_args()
    inputs = [
        {"name": "component"},
        {"default": "", "name": "runtime-config"},
        {"default": "", "name": "task"},
        {"default": "", "name": "task-name"},
        {"default": "0", "name": "parent-dag-id"},
        {"default": "-1", "name": "iteration-index"},
        {"default": "DAG", "name": "driver-type"},
    ]
    outputs = [
        {"name": "execution-id", "valueFrom": {"path": "/tmp/outputs/execution-id"}},
        _output("iteration-count", "0"),
        _output("condition", "true"),
    ]
    return _driver_template(args, inputs, outputs, env=False)


def importer(pipeline: str) -> dict:
    """system-importer: the launcher in importer mode, one step per importer task."""
    args = [
        "--executor_type", "importer", "--task_spec", _inp("task"),
        "--component_spec", _inp("component"), "--importer_spec", _inp("importer"),
        "--pipeline_name", pipeline, "--run_id", "{{workflow.uid}}",
        "--parent_dag_id", _inp("parent-dag-id"),
        "--pod_name", "$(KFP_POD_NAME)", "--pod_uid", "$(KFP_POD_UID)",
        "--mlmd_server_address", _MLMD[0], "--mlmd_server_port", _MLMD[1],
        "--cache_disabled=false", "--ml_pipeline_tls_enabled=false",
        "--metadata_tls_enabled=false", "--ca_cert_path", "",
        "--log_level", "1", "--publish_logs", "true",
    ]  # fmt: skip
    inputs = [{"name": n} for n in ("task", "component", "importer", "parent-dag-id")]
    template = _driver_template(args, inputs, None, env=True)
    template["container"]["image"] = _LAUNCHER_IMAGE
    template["container"]["command"] = ["launcher-v2"]
    template["container"]["envFrom"] = [_METADATA_ENV_FROM]
    template["metadata"]["annotations"]["pipelines.kubeflow.org/runtime-role"] = "launcher"
    return template


def container_executor(*, retry: bool) -> tuple[dict, dict]:
    """[retry-]system-container-executor (a DAG that skips the pod on a cache hit) and
    [retry-]system-container-impl (the user's container behind the launcher), named."""
    prefix = "retry-" if retry else ""
    name, impl = f"{prefix}system-container-executor", f"{prefix}system-container-impl"
    retry_names = list(RETRY_PARAMS) if retry else []
    executor = {
        "dag": {
            "tasks": [
                {
                    "arguments": {
                        "parameters": [
                            {"name": n, "value": _inp(n)}
                            for n in ["pod-spec-patch", *retry_names]
                        ]
                    },
                    "name": "executor",
                    "template": impl,
                    "when": "{{inputs.parameters.cached-decision}} != true",
                }
            ]
        },
        "inputs": {
            "parameters": [
                {"name": "pod-spec-patch"}, {"default": "false", "name": "cached-decision"}
            ] + [{"default": "0", "name": n} for n in retry_names]
        },
        "metadata": {},
        "outputs": {},
    }  # fmt: skip
    mounts = [{"mountPath": path, "name": vol} for vol, path in _SCRATCH]
    env = list(_COMMON_ENV)
    if retry:
        env.append({"name": "KFP_RETRY_INDEX", "value": "{{retries}}"})
    implementation = {
        "container": {
            "command": ["should-be-overridden-during-runtime"],
            "env": env,
            "envFrom": [_METADATA_ENV_FROM],
            "image": "gcr.io/ml-pipeline/should-be-overridden-during-runtime",
            "name": "",
            "resources": {},
            "securityContext": _container_security(run_as_non_root=False),
            "volumeMounts": mounts,
        },
        "initContainers": [
            {
                "args": ["--copy", "/kfp-launcher/launch"],
                "command": ["launcher-v2"],
                "image": _LAUNCHER_IMAGE,
                "name": "kfp-launcher",
                "resources": {
                    "limits": {"cpu": "500m", "memory": "256Mi"},
                    "requests": {"cpu": "100m"},
                },
                "securityContext": _container_security(run_as_non_root=True),
                "volumeMounts": mounts[:1],
            }
        ],
        "inputs": {"parameters": [{"name": n} for n in ["pod-spec-patch", *retry_names]]},
        "metadata": {"annotations": {"pipelines.kubeflow.org/runtime-role": "launcher"}},
        "outputs": {},
        "podSpecPatch": _inp("pod-spec-patch"),
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "volumes": [{"emptyDir": {}, "name": vol} for vol, _ in _SCRATCH],
    }
    if retry:
        implementation["retryStrategy"] = {
            "backoff": {
                "duration": _inp("retry-backoff-duration"),
                "factor": _inp("retry-backoff-factor"),
                "maxDuration": _inp("retry-backoff-max-duration"),
            },
            "limit": _inp("retry-max-count"),
        }
    executor["name"], implementation["name"] = name, impl
    return executor, implementation


RETRY_PARAMS = (
    "retry-max-count",
    "retry-backoff-duration",
    "retry-backoff-factor",
    "retry-backoff-max-duration",
)
_COMMON_ENV = [
    {"name": "KFP_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    {"name": "KFP_POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
]
_METADATA_ENV_FROM = {"configMapRef": {"name": "metadata-grpc-configmap", "optional": True}}


def _output(name: str, default: str) -> dict:
    return {"name": name, "valueFrom": {"default": default, "path": f"/tmp/outputs/{name}"}}


def _container_security(*, run_as_non_root: bool) -> dict:
    context: dict[str, Any] = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    if run_as_non_root:
        context["runAsNonRoot"] = True
    context["seccompProfile"] = {"type": "RuntimeDefault"}
    return context


def _driver_template(
    args: list[str], inputs: list[dict], outputs: list | None, *, env: bool
) -> dict:
    """A driver (or importer) template: one small container with the given arguments."""
    container: dict[str, Any] = {
        "args": args,
        "command": ["driver"],
        "image": _DRIVER_IMAGE,
        "name": "",
        "resources": {
            "limits": {"cpu": "500m", "memory": "512Mi"},
            "requests": {"cpu": "100m", "memory": "64Mi"},
        },
        "securityContext": _container_security(run_as_non_root=True),
    }
    if env:
        container["env"] = list(_COMMON_ENV)
    return {
        "container": container,
        "inputs": {"parameters": inputs},
        "metadata": {"annotations": {"pipelines.kubeflow.org/runtime-role": "driver"}},
        "outputs": {"parameters": outputs} if outputs else {},
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    }


def _inp(name: str) -> str:
    return "{{inputs.parameters." + name + "}}"


def _out(name: str) -> str:
    return "{{outputs.parameters." + name + ".path}}"
