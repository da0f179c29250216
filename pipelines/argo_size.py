"""How big is the Argo Workflow that a Kubeflow cluster builds from a compiled pipeline?

KFP v2 submits a run as one Argo Workflow object, which the API server builds from the compiled
YAML (the IR: a PipelineSpec document and, optionally, a platform-spec document) with its
argocompiler (kubeflow/pipelines backend/src/v2/compiler/argocompiler, read at the August 2026
main branch). Kubernetes stores that object in etcd, which refuses requests over 1.5 MiB, and
Argo's controller refuses workflows whose JSON is over 1 MiB (MAX_WORKFLOW_SIZE) unless
node-status offload is configured, which KFP's manifests do not do (DESIGN.md §4). No cluster is
reachable here, so the size is estimated: this module rebuilds the Workflow that argocompiler
emits, as a plain dict, and measures it serialized the way the cluster stores it (compact JSON,
Go's encoding/json escaping). What argocompiler emits, and so what is rebuilt here:

- once per workflow: the driver and launcher templates (`system-container-driver`,
  `system-dag-driver`, `system-importer`, `[retry-]system-container-executor` / `-impl`),
  whose text depends only on the pipeline name and on whether any task retries;
- as workflow arguments, once each: every container or importer component's spec and its
  container (deduplicated by container), every DAG component's spec, which holds the task spec
  of every task inside it (so the exit handler's DAG stores the whole pipeline's task specs
  again), and one `kubernetes-<component>` argument per component with a platform config;
- per task: a driver step whose arguments carry the task's own spec as JSON, and an executor
  step (retry settings as arguments), or one importer step; per DAG task a DAG driver and a DAG
  step; the exit task as an exit-hook DAG;
- the runtime config (every pipeline parameter's value) once, in the root driver's arguments.

With `api_server=True` (the default) the API server's own additions are counted too: the Istio
annotation on every template, the run-id labels and run-name annotation, and the default
pipeline root. The estimate covers the Workflow as submitted; Argo adds a status node per step
while the run goes, which grows the object further (nodes are not counted here).

Loops (parameter iterators), conditions and pod metadata are not modelled (SDAR's pipelines use
none); tests/test_argo_size.py checks the estimate against the backend's own compiled workflows
in kubeflow/pipelines test_data/compiled-workflows (tests/data/argo/README.md). Backend 2.14.3
(what scripts/local_run.sh installs) emits the same per-task steps and arguments, and shared
driver and launcher templates about 2 KB smaller (checked against its argocompiler testdata),
so there the estimate is about 2 KB high.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from pipelines import argo_templates as templates
from sdar_core.errors import ConfigError

__all__ = ["WORKFLOW_BUDGET_BYTES", "emulate_workflow", "estimate_workflow_bytes", "go_json"]

# our budget: below Argo's 1 MiB (MAX_WORKFLOW_SIZE) and etcd's 1.5 MiB request limit, with room
# for the API server's additions and the first status writes
WORKFLOW_BUDGET_BYTES = 900 * 1024

_DEFAULT_PIPELINE_ROOT = "minio://mlpipeline/v2/artifacts"
_EXIT_STRATEGY = "ALL_UPSTREAM_TASKS_COMPLETED"
_DUMMY_IMAGES = frozenset({"argostub/createpvc", "argostub/deletepvc"})


def go_json(value: Any) -> str:
    """`value` as Go's encoding/json writes it: compact, UTF-8 kept, `<`, `>`, `&`, U+2028 and
    U+2029 escaped, whole floats without a fraction (protojson's numbers go through float64)."""
    text = json.dumps(_go_numbers(value), separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _go_numbers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, dict):
        return {k: _go_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_go_numbers(v) for v in value]
    return value


def _go_float(value: float | int) -> str:
    """A float as Go's %v prints it (the retry back-off factor)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def load_package(package: str | Path | list[dict]) -> list[dict]:
    """The YAML documents of a compiled pipeline (a path), or `package` if already loaded."""
    if isinstance(package, list):
        return package
    path = Path(package)
    if not path.is_file():
        raise ConfigError(f"no compiled pipeline at {path}: run `sdar compile` first")
    docs = [d for d in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader) if d]
    if not docs or "root" not in docs[0]:
        raise ConfigError(f"{path} is not a compiled KFP pipeline (no root): compile it again")
    return docs


def estimate_workflow_bytes(package: str | Path | list[dict], *, api_server: bool = True) -> int:
    """Estimated size in bytes of the Argo Workflow (JSON) that the KFP v2 API server builds from
    the compiled pipeline `package` (a YAML path or its loaded documents); module docstring."""
    return len(go_json(emulate_workflow(load_package(package), api_server=api_server)).encode())


def emulate_workflow(docs: list[dict], *, api_server: bool = True) -> dict:
    """The Argo Workflow argocompiler builds from the IR documents `docs`, as a dict."""
    docs = copy.deepcopy(docs)  # the implicit dependencies are added in place
    spec = docs[0]
    platform = {}
    for doc in docs[1:]:
        platform = doc.get("platforms", {}).get("kubernetes", {}) or platform
    return _Compiler(spec, platform, api_server=api_server).workflow()


class _Compiler:
    """A Python reading of argocompiler's Compile (argo.go, dag.go, container.go, importer.go),
    keeping what changes the size; names follow the Go code."""

    def __init__(self, spec: dict, platform: dict, *, api_server: bool) -> None:
        self.spec = spec
        self.name = spec["pipelineInfo"]["name"]
        self.components = spec.get("components", {})
        self.executors = spec.get("deploymentSpec", {}).get("executors", {})
        self.k8s = platform.get("deploymentSpec", {}).get("executors", {})
        self.api_server = api_server
        self.arguments: dict[str, str] = {}
        self.templates: dict[str, dict] = {}

    # --- workflow arguments (saveProtoToArguments: first one wins) ---------------------------

    def _save(self, name: str, message: Any) -> str:
        self.arguments.setdefault(name, go_json(message))
        return _wf(name)

    def _hash(self, component: str) -> str:
        """hashComponentContainer: components that share a container share their arguments."""
        label = self.components.get(component, {}).get("executorLabel")
        container = self.executors.get(label, {}).get("container") if label else None
        if container is None:
            return component
        return hashlib.sha256(go_json(container).encode()).hexdigest()

    # --- the whole workflow -------------------------------------------------------------------

    def workflow(self) -> dict:
        visited: set[str] = set()
        self._visit("root", self.spec["root"], visited)
        parameters = [{"name": k, "value": v} for k, v in self.arguments.items()]
        wf = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Workflow",
            "metadata": {"generateName": self.name.split("/")[-1] + "-"},
            "spec": {
                "arguments": {"parameters": parameters},
                "entrypoint": "entrypoint",
                "podMetadata": {
                    "annotations": {"pipelines.kubeflow.org/v2_component": "true"},
                    "labels": {"pipelines.kubeflow.org/v2_component": "true"},
                },
                "securityContext": {
                    "runAsNonRoot": True,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "serviceAccountName": "pipeline-runner",
                "templates": list(self.templates.values()),
            },
            "status": {"finishedAt": None, "startedAt": None},
        }
        if self.api_server:  # template/v2_template.go after Compile
            for template in wf["spec"]["templates"]:
                template["metadata"].setdefault("annotations", {})
                template["metadata"]["annotations"]["sidecar.istio.io/inject"] = "false"
            run_id = "00000000-0000-0000-0000-000000000000"
            wf["metadata"]["labels"] = {"pipeline/runid": run_id}
            wf["metadata"]["annotations"] = {"pipelines.kubeflow.org/run_name": self.name}
            wf["metadata"]["namespace"] = "kubeflow"
            wf["spec"]["podMetadata"]["labels"]["pipeline/runid"] = run_id
        return wf

    def _visit(self, name: str, component: dict, visited: set[str]) -> None:
        """pipelineDFS.dfs: children first, then the component itself."""
        if name in visited:
            return
        visited.add(name)
        label = component.get("executorLabel")
        if label:
            if label in self.k8s:
                self._save(f"kubernetes-{name}", self.k8s[label])
            executor = self.executors[label]
            digest = self._hash(name)
            self._save(f"components-{digest}", component)
            self._save(
                f"implementations-{digest}", executor.get("container", executor.get("importer"))
            )
            return
        tasks = component.get("dag", {}).get("tasks", {})
        for task in tasks.values():
            ref = task["componentRef"]["name"]
            self._visit(ref, self.components[ref], visited)
        self._dag(name, component)

    # --- DAG components (dag.go) --------------------------------------------------------------

    def _dag(self, name: str, component: dict) -> None:
        tasks = component.get("dag", {}).get("tasks", {})
        _add_implicit_dependencies(tasks)
        self._save(f"components-{self._hash(name)}", component)
        parent = "{{inputs.parameters.parent-dag-id}}"
        exit_templates: dict[str, str] = {}
        for key in sorted(tasks):
            task = tasks[key]
            if task.get("triggerPolicy", {}).get("strategy") != _EXIT_STRATEGY:
                continue
            hook = f"exit-hook-{name}-{key}"
            for dep in task.get("dependentTasks", []):
                exit_templates[dep] = hook
            self._add(hook, _dag_template(self._task(key, task, parent, "")))
        steps = []
        for key in sorted(tasks):
            task = tasks[key]
            if task.get("triggerPolicy", {}).get("strategy") == _EXIT_STRATEGY:
                continue
            steps += self._task(key, task, parent, exit_templates.get(key, ""))
        self._add(name, _dag_template(steps))
        if name == "root":
            self._entrypoint()

    def _entrypoint(self) -> None:
        values = {}
        for param, definition in (
            self.spec["root"].get("inputDefinitions", {}).get("parameters", {}).items()
        ):
            if "defaultValue" in definition:
                values[param] = definition["defaultValue"]
            elif definition.get("isOptional"):
                values[param] = None
        runtime: dict[str, Any] = {"parameterValues": values} if values else {}
        if self.api_server:
            runtime["gcsOutputDirectory"] = _DEFAULT_PIPELINE_ROOT
        driver = {
            "arguments": {
                "parameters": [
                    {"name": "component", "value": self._save("components-root", {})},
                    {"name": "runtime-config", "value": go_json(runtime)},
                    {"name": "driver-type", "value": "ROOT_DAG"},
                ]
            },
            "name": "root-driver",
            "template": self._dag_driver_template(),
        }
        root = _dag_step("root", "root", "{{tasks.root-driver.outputs.parameters.execution-id}}")
        root["depends"] = "root-driver.Succeeded"
        template = {
            "dag": {"tasks": [driver, root]},
            "inputs": {},
            "metadata": {},
            "name": "entrypoint",
            "outputs": {},
        }
        self._add("entrypoint", template)

    def _add(self, name: str, template: dict) -> None:
        template["name"] = name
        self.templates.setdefault(name, template)

    # --- one task (workflowCompiler.task) -----------------------------------------------------

    def _task(self, key: str, task: dict, parent: str, exit_template: str) -> list[dict]:
        ref = task["componentRef"]["name"]
        component = self.components[ref]
        placeholder = _wf("components-" + self._hash(ref))
        task_json = go_json(task)
        depends = _depends(task.get("dependentTasks", []))
        is_exit = task.get("triggerPolicy", {}).get("strategy") == _EXIT_STRATEGY
        driver_name = f"{key}-driver"
        if "dag" in component:
            params = [
                {"name": "component", "value": placeholder},
                {"name": "parent-dag-id", "value": parent},
                {"name": "task", "value": task_json},
                {"name": "task-name", "value": key},
            ]
            driver = {
                "arguments": {"parameters": params},
                "name": driver_name,
                "template": self._dag_driver_template(),
            }
            if depends and not is_exit:
                driver["depends"] = depends
            execution = _task_out(driver_name, "execution-id")
            condition = _task_out(driver_name, "condition")
            step = _dag_step(key, ref, execution, condition)
            step["depends"] = f"{driver_name}.Succeeded"
            _add_exit_hook(step, exit_template, parent)
            return [driver, step]
        executor = self.executors[component["executorLabel"]]
        if "importer" in executor:
            return [self._importer_step(key, ref, task_json, parent)]
        params = [
            {"name": "component", "value": placeholder},
            {"name": "task", "value": task_json},
            {"name": "container", "value": _wf("implementations-" + self._hash(ref))},
            {"name": "task-name", "value": key},
            {"name": "parent-dag-id", "value": parent},
        ]  # fmt: skip
        if f"kubernetes-{ref}" in self.arguments:
            params.append(
                {
                    "name": "kubernetes-config",
                    "value": _wf("kubernetes-" + ref),
                }
            )
        driver = {
            "arguments": {"parameters": params},
            "name": driver_name,
            "template": self._container_driver_template(),
        }
        if depends and not is_exit:
            driver["depends"] = depends
        if executor["container"].get("image") in _DUMMY_IMAGES:  # PVC create/delete: no pod
            driver["name"] = key
            return [driver]
        retry = task.get("retryPolicy")
        step_params = [
            {"name": "pod-spec-patch", "value": _task_out(driver_name, "pod-spec-patch")},
            {
                "default": "false",
                "name": "cached-decision",
                "value": _task_out(driver_name, "cached-decision"),
            },
        ] + _retry_values(retry)
        step = {
            "arguments": {"parameters": step_params},
            "depends": f"{driver_name}.Succeeded",
            "name": key,
            "template": self._executor_templates(retry is not None),
        }
        _add_exit_hook(step, exit_template, parent)
        return [driver, step]

    def _importer_step(self, key: str, ref: str, task_json: str, parent: str) -> dict:
        digest = self._hash(ref)
        return {
            "arguments": {
                "parameters": [
                    {"name": "task", "value": task_json},
                    {
                        "name": "component",
                        "value": _wf("components-" + digest),
                    },
                    {
                        "name": "importer",
                        "value": _wf("implementations-" + digest),
                    },
                    {"name": "parent-dag-id", "value": parent},
                ]
            },
            "name": key,
            "template": self._importer_template(),
        }

    # --- the shared templates (pipelines/argo_templates.py), added once -------------------------

    def _container_driver_template(self) -> str:
        return self._shared("system-container-driver", templates.container_driver, self.name)

    def _dag_driver_template(self) -> str:
        return self._shared("system-dag-driver", templates.dag_driver, self.name)

    def _importer_template(self) -> str:
        return self._shared("system-importer", templates.importer, self.name)

    def _shared(self, name: str, build: Any, pipeline: str) -> str:
        if name not in self.templates:
            self._add(name, build(pipeline))
        return name

    def _executor_templates(self, retry: bool) -> str:
        executor, implementation = templates.container_executor(retry=retry)
        if executor["name"] not in self.templates:
            self._add(executor["name"], executor)
            self._add(implementation["name"], implementation)
        return executor["name"]


def _inp(name: str) -> str:
    return "{{inputs.parameters." + name + "}}"


def _wf(name: str) -> str:
    return "{{workflow.parameters." + name + "}}"


def _task_out(task: str, name: str) -> str:
    return "{{tasks." + task + ".outputs.parameters." + name + "}}"


def _dag_template(tasks: list[dict]) -> dict:
    return {
        "dag": {"tasks": tasks},
        "inputs": {"parameters": [{"name": "parent-dag-id"}]},
        "metadata": {},
        "outputs": {},
    }


def _dag_step(name: str, template: str, parent: str, condition: str = "") -> dict:
    return {
        "arguments": {
            "parameters": [
                {"name": "parent-dag-id", "value": parent},
                {"name": "condition", "value": condition},
            ]
        },
        "name": name,
        "template": template,
    }


def _add_exit_hook(step: dict, template: str, parent: str) -> None:
    if template:
        step["hooks"] = {
            "exit": {
                "arguments": {"parameters": [{"name": "parent-dag-id", "value": parent}]},
                "template": template,
            }
        }


def _retry_values(retry: dict | None) -> list[dict]:
    """getTaskRetryParametersWithValues: durations as whole seconds, the factor as Go's %v."""
    if retry is None:
        return []
    values = [{"name": "retry-max-count", "value": str(retry.get("maxRetryCount", 0))}]
    if "backoffDuration" in retry:
        values.append(
            {"name": "retry-backoff-duration", "value": _seconds(retry["backoffDuration"])}
        )
    values.append(
        {"name": "retry-backoff-factor", "value": _go_float(retry.get("backoffFactor", 0))}
    )
    if "backoffMaxDuration" in retry:
        values.append(
            {"name": "retry-backoff-max-duration", "value": _seconds(retry["backoffMaxDuration"])}
        )
    return values


def _seconds(duration: str) -> str:
    return str(int(float(str(duration).rstrip("s"))))


def _depends(deps: list[str]) -> str:
    return " && ".join(f"{dep}.Succeeded" for dep in deps)


def _add_implicit_dependencies(tasks: dict[str, dict]) -> None:
    """addImplicitDependencies: a task depends on every task whose output it reads (sorted)."""
    for task in tasks.values():
        deps = list(task.get("dependentTasks", []))
        inputs = task.get("inputs", {})
        for spec in list(inputs.get("parameters", {}).values()) + list(
            inputs.get("artifacts", {}).values()
        ):
            for kind in ("taskOutputParameter", "taskOutputArtifact"):
                producer = spec.get(kind, {}).get("producerTask")
                if producer and producer not in deps:
                    deps.append(producer)
        if deps:
            task["dependentTasks"] = sorted(deps)
