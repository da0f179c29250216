"""Submit a chained run (`sdar submit OUT.chain.json`): its chunks one after another.

Chunk 1 is submitted with the user's arguments and a new `chain_id`; the submitter waits for it
(`kfp.Client.wait_for_run_completion`), reads from the finished run the URI of its last update's
`checkpoint` (and of the warm start's, the run's start model, when the run has one) and submits
chunk 2 with `model_uri` = that checkpoint and `start_model_uri` = the run's start model (the
base model when there is no warm start), and so on. All chunks log into one MLflow run: chunk 1
tags it with the chain id and the later chunks continue the run with that tag
(components/chain_tracking.py); KFP's run API returns no output parameters, so the MLflow run id
itself cannot be handed on.

Reading an output artifact's URI: `kfp.Client.get_run` returns the run's task details, whose
`outputs[name].artifact_ids` are ML Metadata ids; the API server's ArtifactService
(`GET /apis/v2beta1/artifacts/{artifact_id}`, kubeflow/pipelines backend/api/v2beta1/
artifacts.proto) returns the artifact with its `uri`. kfp 2.17's generated client has no wrapper
for that service, so it is called through the generated client's `ApiClient.call_api`, with the
same host and token as every other call. This was written against those documents and tested
with a fake client; no cluster was reachable here.

The kfp.Client methods used (all a fake has to implement): `create_run_from_pipeline_package`,
`wait_for_run_completion`, `get_run`, and `_run_api.api_client.call_api`.

The chain state file (JSON, written atomically after every change) records the chain id, the
arguments, the start model's URI and, per chunk, its KFP run id, status and checkpoint URI. A
second `sdar submit` of the same manifest with the same state file picks the chain up: finished
chunks are skipped, a chunk still running is waited for, and a chunk that failed (or was
cancelled) is resubmitted alone; caching stays on, so it resumes after its last finished task.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipelines.chain import read_manifest
from sdar_core.errors import ArtifactError, ConfigError
from sdar_core.outputs import write_text_atomic

__all__ = ["ChainFailed", "artifact_uri", "submit_chain"]

WEEK_S = 7 * 24 * 3600
_FINAL = {"SUCCEEDED", "FAILED", "SKIPPED", "ERROR", "CANCELED", "CANCELLED"}


class ChainFailed(RuntimeError):
    """A chunk of the chain did not succeed; the state file says which."""


def artifact_uri(client: Any, artifact_id: str) -> str:
    """The URI of the ML Metadata artifact `artifact_id` (module docstring)."""
    found = client._run_api.api_client.call_api(
        "/apis/v2beta1/artifacts/{artifact_id}",
        "GET",
        path_params={"artifact_id": artifact_id},
        header_params={"Accept": "application/json"},
        response_type="object",
        auth_settings=["Bearer"],
        _return_http_data_only=True,
    )
    uri = found.get("uri") if isinstance(found, dict) else None
    if not uri:
        raise ArtifactError(f"the KFP API returned no URI for artifact {artifact_id}: {found!r}")
    return uri


def output_uri(client: Any, run_id: str, task: str, output: str = "checkpoint") -> str:
    """The URI of output `output` of the task displayed as `task` in the finished KFP run."""
    run = client.get_run(run_id)
    details = getattr(getattr(run, "run_details", None), "task_details", None) or []
    for detail in details:  # a retried task has several entries: take the one that succeeded
        outputs = getattr(detail, "outputs", None) or {}
        ids = getattr(outputs.get(output), "artifact_ids", None) or []
        if detail.display_name == task and _state(detail.state) == "SUCCEEDED" and ids:
            return artifact_uri(client, ids[0])
    raise ArtifactError(
        f"KFP run {run_id} has no succeeded task {task!r} with an output {output!r}: was it "
        "compiled by sdar compile for this chain?"
    )


def _state(state: Any) -> str:
    return str(getattr(state, "value", state) or "").upper()


def _default_state_path(manifest: Path, run_name: str) -> Path:
    return Path.cwd() / f"{manifest.name.removesuffix('.chain.json')}.{run_name}.state.json"


def _load_state(path: Path, manifest: Path, arguments: dict[str, Any], run_name: str) -> dict:
    """The state of the chain at `path`, or a new one; refuse one made for another chain."""
    if not path.is_file():
        return {
            "manifest": str(manifest.resolve()),
            "chain_id": f"{run_name}-{uuid.uuid4().hex[:8]}",
            "run_name": run_name,
            "arguments": arguments,
            "start_model_uri": None,
            "chunks": [],
        }
    state = json.loads(path.read_text())
    if state.get("manifest") != str(manifest.resolve()) or state.get("arguments") != arguments:
        raise ConfigError(
            f"the chain state {path} belongs to another chain or other arguments: pass the same "
            "manifest and arguments to pick it up, or --chain-state NEW_FILE to start a new chain"
        )
    return state


def submit_chain(
    manifest_file: str | Path,
    client: Any,
    *,
    arguments: dict[str, Any],
    run_name: str,
    experiment: str = "sdar",
    state_path: str | Path | None = None,
    timeout_s: int = WEEK_S,
    enable_caching: bool = True,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run (or pick up) the chain of `manifest_file` on `client` (module docstring); return
    the final state. ChainFailed when a chunk does not succeed (run the same call again to
    resubmit it). `enable_caching=False` (`sdar submit --no-cache`) runs every task again."""
    manifest_file = Path(manifest_file)
    manifest = read_manifest(manifest_file)
    path = Path(state_path) if state_path else _default_state_path(manifest_file, run_name)
    state = _load_state(path, manifest_file, arguments, run_name)
    records = state["chunks"]
    n = len(manifest["chunks"])
    records.extend(
        {"kfp_run_id": None, "status": None, "checkpoint_uri": None}
        for _ in range(n - len(records))
    )
    write_text_atomic(path, json.dumps(state, indent=1) + "\n")
    echo(f"chain {state['chain_id']}: {n} runs; state in {path}")
    for i, chunk in enumerate(manifest["chunks"]):
        first, last = chunk["first_round"], chunk["first_round"] + chunk["rounds"] - 1
        label = f"run {i + 1} of {n} (rounds {first}-{last})"
        submit = {"run_name": run_name, "experiment": experiment, "caching": enable_caching}
        _run_chunk(client, manifest, state, i, label, path, submit, timeout_s, echo)
    return state


def _run_chunk(client, manifest, state, i, label, path, submit, timeout_s, echo):
    """Chunk i: skip it when done, else submit it (new, or failed before) or wait for the run
    it has, then record its status and checkpoint URI; ChainFailed unless it succeeded."""
    chunk, record, n = manifest["chunks"][i], state["chunks"][i], len(manifest["chunks"])
    if record["status"] == "SUCCEEDED":
        echo(f"{label}: done (KFP run {record['kfp_run_id']})")
        return
    if record["kfp_run_id"] is None or record["status"] in _FINAL:  # new, or failed: submit
        run = client.create_run_from_pipeline_package(
            str(chunk["package"]),
            arguments=_chunk_arguments(state, i, state["arguments"]),
            run_name=f"{submit['run_name']} ({i + 1}/{n})",
            experiment_name=submit["experiment"],
            enable_caching=submit["caching"],
        )
        record.update(kfp_run_id=run.run_id, status="RUNNING", checkpoint_uri=None)
        write_text_atomic(path, json.dumps(state, indent=1) + "\n")
        echo(f"{label}: submitted, KFP run {run.run_id}")
    run_id = record["kfp_run_id"]
    record["status"] = _state(client.wait_for_run_completion(run_id, timeout_s).state)
    if record["status"] == "SUCCEEDED":
        record["checkpoint_uri"] = output_uri(client, run_id, chunk["checkpoint_task"])
        if i == 0 and manifest["start_model_task"]:
            state["start_model_uri"] = output_uri(client, run_id, manifest["start_model_task"])
    write_text_atomic(path, json.dumps(state, indent=1) + "\n")
    if record["status"] != "SUCCEEDED":
        raise ChainFailed(
            f"{label} ended {record['status']} (KFP run {run_id}): fix the cause and run the "
            f"same sdar submit again; it resubmits this run alone ({path})"
        )
    echo(f"{label}: succeeded")


def _chunk_arguments(state: dict, i: int, arguments: dict[str, Any]) -> dict[str, Any]:
    """Chunk i's arguments: the user's, the chain id and, after the first, the previous
    chunk's checkpoint and the run's start model."""
    given = dict(arguments) | {"chain_id": state["chain_id"]}
    if i == 0:
        return given
    given.pop("inputs_json", None)  # the first chunk logged the data's hashes
    given["model_uri"] = state["chunks"][i - 1]["checkpoint_uri"]
    start = state["start_model_uri"] or arguments.get("model_uri")
    if start is not None:  # else the start model compiled in (the recipe's model_uri)
        given["start_model_uri"] = start
    return given
