"""The SDAR pipeline factory and its compilation.

    start_tracking ─┐ (run id to every stage)
    model, games (importers) ─► index_skills ─► [warmstart_sft] ─► evaluate(start), [(ceiling)]
        └► R × (generate_rollouts ─► [score_teacher] ─► sdar_update [─► evaluate(round-n)])
           ─► evaluate(final)

Evaluations besides start and final, both compile-time options: with `eval_every` = k the
checkpoint of every k-th update (round n = k, 2k, .. of the run, not the last, which the final
evaluation covers) is evaluated with the run's eval config too, label `round-n`, logged in the
same `eval/...` series at step n, so that `eval/success/...` is a curve from 0 (start) to R
(final); with `ceiling` the start checkpoint is evaluated once more with the retrieved skills in
its prompt (as the teacher sees them), label `ceiling`, series `eval_ceiling/...` at step 0: the
teacher's ceiling. The final evaluation waits for the others (its plots read them).

Each update takes the previous round's checkpoint and the run's starting checkpoint as its KL
reference. Only weights cross artifact storage where a shared volume is there: the update keeps
the trainer state (optimizer moments, float32 weights; tens of GB for a 3B model) on the run's
KFP workspace (cluster profile, KFP backend >= 2.14) or on the PVC (`pvc_name`, any profile),
under `<volume>/trainer-state/<MLflow run id>/`, and the checkpoint artifact, which rollouts,
teacher, evaluation and the next update download, carries the weights and small JSON naming the
state's folder. The workspace ends with the run: the run's last update (`_state_leaves_run`)
writes the state into its checkpoint instead, so that a next run of a chain resumes from it; a
PVC outlives the run, and a chain keeps its state there. Without either (the local profile, the
embedded run) the state travels inside the checkpoint. Resubmitting a failed run with caching
on needs the PVC: cached updates of a workspace run name folders of a workspace that is gone.

KFP v2 cannot loop over artifacts, so the R rounds are unrolled here at compile time; the
algorithm, environment, R, warm start, profile, GPU count, PVC and secret name are compile-time
choices (they change the graph or its resources), everything else is a pipeline parameter: the
data URIs, the MLflow URI / experiment / run name, and one JSON parameter per stage config, whose
default is the profile's (`default_stage_configs`, pipelines/options.py) with any fields the
options give laid over it (`PipelineOptions.stage_configs`, e.g. from a recipe:
pipelines/recipe.py). The
teacher stage is absent for presets that need no teacher, and every round is absent for presets
that do not train (vanilla, skill_prompt evaluate the start checkpoint only).

An exit handler (`end_tracking`, run however the other tasks end) marks the MLflow run FAILED or
KILLED when the pipeline fails or is cancelled; the embedded run, which ends its MLflow run
itself, compiles without it (`exit_handler=False`).

Every task has a display name, explicit CPU/memory requests and caching on (a re-submitted run
resumes after the last finished stage). Only if asked: the MLflow credentials from a Kubernetes
secret on every task (`mlflow_secret`; KFP backends before 2.15 cannot make a secret optional,
so a pipeline that names one needs it to exist) and a PVC mounted at /data on the tasks that use
it (PVC_STAGES: the update, whose `state_dir` may live there; one task at a time, so a
ReadWriteOnce volume never has two nodes attached).

Chained runs: a long run is several pipelines (Argo refuses a Workflow of 150 unrolled rounds;
pipelines/chain.py). `first_round` and `total_rounds` make a chunk that runs rounds first_round
.. first_round + rounds - 1 of a run of total_rounds: round indices and every update's
`total_rounds` are the run's, so schedules (learning rate, RLSD's λ) continue across chunks. A
chained pipeline takes a `chain_id` parameter. The first chunk runs as a whole run starts (warm
start, start evaluation) and tags its MLflow run with the chain id (join_chain); a later chunk
imports the previous chunk's final checkpoint (`model_uri`) and the run's start model
(`start_model_uri`, the KL reference and LoRA base of every round) and continues the MLflow run
that carries its chain's tag (continue_chain). Only the chunk that ends the run evaluates the
final checkpoint (which marks the run FINISHED); the exit handler of any other chunk marks the
run FAILED / KILLED when the chunk fails or is cancelled and leaves it RUNNING when it succeeds.
Chunks do not evaluate their last checkpoint: an evaluation per chunk costs time and would add
points to the run's history that one pipeline would not have. Embedded, a pipeline that trains
returns (run id, final checkpoint, start model), from which the runner starts the next chunk;
compiled for a cluster it returns the run id alone (KFP allows pipeline outputs only outside an
exit handler), and `sdar submit` reads the artifacts from the run (pipelines/chain_submit.py).

With LoRA an update writes only the adapter, which names its base by local path; every stage
that loads a checkpoint of the rounds takes the run's starting checkpoint as its `base_model`
input (the update as its `reference`), and KFP's launcher downloads an artifact to the same
local path (derived from its URI) in every pod, so the adapter's base is there.
"""

import os
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

from kfp import compiler, dsl, kubernetes
from kfp.dsl import Dataset, Model

from components import (
    continue_chain,
    end_chunk_tracking,
    end_tracking,
    evaluate,
    generate_rollouts,
    index_skills,
    join_chain,
    score_teacher,
    sdar_update,
    start_tracking,
    warmstart_sft,
)
from pipelines.kfp_speed import faster_kfp
from pipelines.options import (
    PipelineOptions,
    eval_rounds,
    last_round_of_run,
    split_run,
    stage_config_defaults,
)
from pipelines.profiles import PROFILES, RETRIED_STAGES, RETRY, SHM_MOUNT
from sdar_core.errors import ConfigError
from sdar_core.limits import overrides

__all__ = [
    "DEFAULT_TRACKING_URI",
    "PipelineOptions",
    "build_pipeline",
    "compile_pipeline",
    "last_round_of_run",
    "split_run",
]

DEFAULT_TRACKING_URI = "http://mlflow.mlflow.svc.cluster.local:5000"
PVC_MOUNT = "/data"
SECRET_KEYS = {"username": "MLFLOW_TRACKING_USERNAME", "password": "MLFLOW_TRACKING_PASSWORD"}
PVC_STAGES = frozenset({"sdar_update"})  # the stages that read or write the volume


def _configure(task: Any, stage: str, label: str, options: PipelineOptions) -> Any:
    """Display name, resources, image, /dev/shm, timeout, retries, caching, secret and PVC of
    one task (pipelines/profiles.py says why each)."""
    res = PROFILES[options.profile][stage]
    if stage == "sdar_update" and options.update_memory is not None:
        res = replace(res, memory=options.update_memory)
    task.set_display_name(label)
    task.set_cpu_request(res.cpu).set_memory_request(res.memory)
    # a memory limit equal to the request: a stage that outgrows it is stopped, not its
    # neighbours; no CPU limit where the profile says so (CFS throttling: profiles.py)
    task.set_memory_limit(res.memory)
    if res.cpu_limit_value() is not None:
        task.set_cpu_limit(res.cpu_limit_value())
    task.set_container_image(res.image)
    if res.shm is not None:
        kubernetes.empty_dir_mount(
            task, volume_name="dshm", mount_path=SHM_MOUNT, medium="Memory", size_limit=res.shm
        )
    if res.timeout_s is not None:
        kubernetes.set_timeout(task, res.timeout_s)
    gpus = options.num_gpus if res.gpus == "num_gpus" else res.gpus
    if gpus:
        task.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(str(gpus))
        for key, value in options.gpu_node_selector:
            kubernetes.add_node_selector(task, label_key=key, label_value=value)
        if options.gpu_toleration:
            kubernetes.add_toleration(
                task, key="nvidia.com/gpu", operator="Exists", effect="NoSchedule"
            )
    if stage in RETRIED_STAGES:
        task.set_retry(**RETRY)
    task.set_caching_options(True)
    if options.mlflow_secret is not None:
        kubernetes.use_secret_as_env(
            task, secret_name=options.mlflow_secret, secret_key_to_env=SECRET_KEYS
        )
    if options.pvc_name is not None and stage in PVC_STAGES:
        kubernetes.mount_pvc(task, pvc_name=options.pvc_name, mount_path=PVC_MOUNT)
    # limits raised at compile time hold in the pods, which validate the stage configs again
    for name, value in sorted(overrides().items()):
        task.set_env_variable(name, value)
    return task


def _task(component: Any, stage: str, name: str, options: PipelineOptions, /, **inputs) -> Any:
    """Add one configured task named `name` (see `_configure`)."""
    return _configure(component(**inputs), stage, name, options)


def state_volume(o: PipelineOptions) -> str | None:
    """Where the updates keep the trainer state: "pvc" (persists across runs), "workspace" (the
    run's KFP workspace, cluster profile), or None (inside the checkpoints)."""
    if o.pvc_name is not None:
        return "pvc"
    if o.profile == "cluster" and o.workspace_size is not None:
        return "workspace"
    return None


def _state_leaves_run(o: PipelineOptions, r: int) -> bool:
    """Whether round r's update is the last of this pipeline run, whose trainer state a next run
    of the chain resumes from (`last_round_of_run`). A chain's last run need not hand it on,
    but every run's last round carries it: a finished run can then still be continued."""
    return last_round_of_run(o, r)


def _state_volume_input(o: PipelineOptions, r: int) -> dict[str, str]:
    """The update task's `state_volume` input for round r (module docstring)."""
    volume = state_volume(o)
    if volume == "pvc":
        return {"state_volume": PVC_MOUNT}
    if volume == "workspace" and not _state_leaves_run(o, r):
        return {"state_volume": dsl.WORKSPACE_PATH_PLACEHOLDER}
    return {}


def _rounds(
    o: PipelineOptions, algo: Any, model: Any, games: Any, index: Any, **params
) -> tuple[Any, list[Any]]:
    """Add the unrolled rounds first_round .. first_round + rounds - 1 from the checkpoint `model`
    (KL reference: `start`, default `model`), with the evaluations of `eval_rounds` (given
    `evaluation`, the evaluate task's shared inputs); return the final checkpoint (an output
    channel) and those evaluation tasks."""
    common = {"tracking_uri": params["tracking_uri"], "run_id": params["run_id"]}
    start = params.pop("start", model)  # the KL reference of every round's update
    evaluation = params.pop("evaluation")
    evaluated = set(eval_rounds(o))
    evaluations = []
    for r in range(o.first_round, o.first_round + o.rounds):
        rollouts = _task(
            generate_rollouts, "generate_rollouts", f"round {r}: rollouts", o,
            model=model, base_model=start, games=games, skill_index=index,
            config_json=params["rollout_config"],
            algorithm=o.algorithm, round=r, **common,
        )  # fmt: skip
        data = rollouts.outputs["trajectories"]
        if algo.needs_teacher:
            teacher = _task(
                score_teacher, "score_teacher", f"round {r}: teacher scoring", o,
                model=model, base_model=start, trajectories=data, skill_index=index,
                config_json=params["teacher_config"], algorithm=o.algorithm, round=r, **common,
            )  # fmt: skip
            data = teacher.outputs["scored_trajectories"]
        update = _task(
            sdar_update, "sdar_update", f"round {r}: update", o,
            model=model, reference=start, trajectories=data,
            config_json=params["update_config"], algorithm=o.algorithm, round=r,
            total_rounds=o.run_rounds, num_gpus=o.num_gpus, **_state_volume_input(o, r),
            **common,
        )  # fmt: skip
        model = update.outputs["checkpoint"]
        if r + 1 in evaluated:
            evaluations.append(
                _task(
                    evaluate,
                    "evaluate",
                    f"evaluate checkpoint of round {r + 1}",
                    o,
                    model=model,
                    base_model=start,
                    label=f"round-{r + 1}",
                    round=r + 1,
                    **evaluation,
                    **common,
                )  # fmt: skip
            )
    return model, evaluations


def build_pipeline(options: PipelineOptions) -> Callable[..., Any]:
    """The pipeline function for `options` (module docstring)."""
    algo = options.check()
    defaults = stage_config_defaults(options)
    o = options

    def sdar_pipeline(
        model_uri: str,
        games_uri: str,
        chain_id: str = "",  # left out of the signature unless chained (_trimmed)
        start_model_uri: str = "",  # left out unless the pipeline continues a run
        mlflow_tracking_uri: str = DEFAULT_TRACKING_URI,
        experiment: str = "sdar",
        run_name: str = o.name,
        inputs_json: str = "{}",
        index_config: str = defaults["index_config"],
        sft_config: str = defaults["sft_config"],
        rollout_config: str = defaults["rollout_config"],
        teacher_config: str = defaults["teacher_config"],
        update_config: str = defaults["update_config"],
        eval_config: str = defaults["eval_config"],
    ) -> str:
        configs = {
            "index_config": index_config, "sft_config": sft_config,
            "rollout_config": rollout_config, "teacher_config": teacher_config,
            "update_config": update_config, "eval_config": eval_config,
        }  # fmt: skip
        tracking = {
            "tracking_uri": mlflow_tracking_uri, "experiment": experiment, "run_name": run_name,
        }  # fmt: skip
        track = _tracking_task(o, tracking, configs, model_uri, games_uri, inputs_json, chain_id)
        common = {"tracking_uri": mlflow_tracking_uri, "run_id": track.output}
        data = {"model_uri": model_uri, "games_uri": games_uri, "start_model_uri": start_model_uri}
        if not o.exit_handler:  # the embedded runner ends the MLflow run itself
            ends = _stages(o, algo, **data, **configs, **common)
            if _hands_on(o):  # what the embedded runner starts the next chunk from
                return ChunkOutputs(track.output, ends["checkpoint"], ends["start_model"])
            return track.output
        # the exit task runs however the tasks inside end (failed, cancelled): it ends the
        # MLflow run FAILED / KILLED unless the final evaluation already ended it; a chunk that
        # does not end the run leaves it RUNNING when it succeeds
        closing = end_tracking(**tracking) if o.ends_run else end_chunk_tracking(**tracking)
        _configure(closing, "end_tracking", "end MLflow run", o).set_caching_options(False)
        with dsl.ExitHandler(closing, name="tracked-run"):
            _stages(o, algo, **data, **configs, **common)
        return track.output

    description = " ".join(filter(None, [f"SDAR pipeline: {algo.description}", o.note]))
    config = None
    if state_volume(o) == "workspace" and any(
        "state_volume" in _state_volume_input(o, r)
        for r in range(o.first_round, o.first_round + o.rounds)
    ):
        config = dsl.PipelineConfig(workspace=dsl.WorkspaceConfig(size=o.workspace_size))
    with faster_kfp():  # kfp alone builds the unrolled rounds in cubic time (kfp_speed.py)
        return dsl.pipeline(name=o.name, description=description, pipeline_config=config)(
            _trimmed(sdar_pipeline, o, used_stage_configs(o, algo))
        )


# The outputs of an embedded pipeline that trains: the MLflow run id, the final checkpoint and
# the run's start model (the KL reference), which the next chunk of a chained run imports.
# KFP allows pipeline outputs only outside an exit handler, so a pipeline compiled for a cluster
# returns the run id alone and `sdar submit` reads the artifacts from the run's task details.
class ChunkOutputs(NamedTuple):
    run_id: str
    checkpoint: Model
    start_model: Model


def _hands_on(o: PipelineOptions) -> bool:
    return bool(o.rounds) and not o.exit_handler


def _tracking_task(
    o: PipelineOptions,
    tracking: dict[str, Any],
    configs: dict[str, Any],
    model_uri: str,
    games_uri: str,
    inputs_json: str,
    chain_id: str,
) -> Any:
    """The task whose output is the MLflow run id: start_tracking creates the run (and, in the
    first chunk of a chain, tags it with the chain's id); a later chunk continues the run that
    carries its chain's tag (continue_chain)."""
    if o.continues_run:  # never from the cache: a resubmitted chunk marks the run RUNNING again
        return _task(
            continue_chain, "start_tracking", "continue MLflow run", o,
            tracking_uri=tracking["tracking_uri"], experiment=tracking["experiment"],
            chain_id=chain_id, first_round=o.first_round,
        ).set_caching_options(False)  # fmt: skip
    track = _task(
        start_tracking, "start_tracking", "start MLflow run", o,
        algorithm=o.algorithm, env=o.env, rounds=o.run_rounds, warm_start=o.warm_start,
        profile=o.profile, model_uri=model_uri, games_uri=games_uri, inputs_json=inputs_json,
        **tracking, **configs,
    )  # fmt: skip
    if o.chained:
        _task(
            join_chain, "start_tracking", "tag MLflow run with its chain", o,
            tracking_uri=tracking["tracking_uri"], run_id=track.output, chain_id=chain_id,
        )  # fmt: skip
    return track


def used_stage_configs(options: PipelineOptions, algo: Any) -> set[str]:
    """The stage-config parameters a graph reads: no sft_config without the warm start, no
    rollout/update configs without rounds, no teacher_config for presets without a teacher."""
    used = {"index_config", "eval_config"}
    if options.warm_start and not options.continues_run:
        used.add("sft_config")
    if options.rounds:
        used |= {"rollout_config", "update_config"}
        if algo.needs_teacher:
            used.add("teacher_config")
    return used


def _trimmed(pipeline_fn: Callable[..., Any], o: PipelineOptions, used: set[str]) -> Any:
    """`pipeline_fn` with the unused stage-config parameters left out of its signature (they get
    "{}", so the MLflow run logs no settings that nothing read) and the data URIs given at
    compile time as their parameters' defaults. KFP reads the signature (`__signature__`) and
    calls the function positionally."""
    import inspect

    from sdar_core.run.config import STAGE_CONFIGS

    if o.model_uri is not None and o.games_uri is None:
        raise ConfigError("a compiled-in model_uri needs games_uri too: pass --data as well")
    given = {"model_uri": o.model_uri, "games_uri": o.games_uri}
    dropped = set() if o.chained else {"chain_id"}
    if o.continues_run:
        # model_uri is the previous chunk's final checkpoint; the compiled-in base model is the
        # run's start model unless a warm start made another one
        given = {"games_uri": o.games_uri}
        dropped.add("inputs_json")  # the data's hashes went into the run with the first chunk
        if not o.warm_start:
            given["start_model_uri"] = o.model_uri
    else:
        dropped.add("start_model_uri")
    required = {"chain_id", "start_model_uri"}
    params = [
        p.replace(default=given[p.name]) if given.get(p.name) is not None
        else p.replace(default=inspect.Parameter.empty) if p.name in required
        else p
        for p in inspect.signature(pipeline_fn).parameters.values()
        if (p.name not in STAGE_CONFIGS or p.name in used) and p.name not in dropped
    ]  # fmt: skip
    # a parameter without a default must come first in a Python signature (KFP ignores order)
    params.sort(key=lambda p: p.default is not inspect.Parameter.empty)
    unused = {name: "{}" for name in STAGE_CONFIGS if name not in used}
    unused |= {name: "" for name in dropped}  # never read (module docstring: chained runs)
    names = [p.name for p in params]

    def pipeline(*values: Any) -> Any:
        return pipeline_fn(**dict(zip(names, values, strict=True)), **unused)

    returns = ChunkOutputs if _hands_on(o) else str
    signature = inspect.signature(pipeline_fn)
    pipeline.__signature__ = signature.replace(parameters=params, return_annotation=returns)
    return pipeline


def _stages(
    o: PipelineOptions,
    algo: Any,
    *,
    model_uri: str,
    games_uri: str,
    start_model_uri: str,
    **params: Any,
) -> dict[str, Any]:
    """Add every task after start_tracking; `params` are the stage configs and `tracking_uri`,
    `run_id` (the MLflow run every stage logs into). Return the final checkpoint and the start
    model (output channels; empty without rounds)."""
    eval_config = params["eval_config"]
    configs = {k: v for k, v in params.items() if k.endswith("_config")}
    common = {"tracking_uri": params["tracking_uri"], "run_id": params["run_id"]}
    model = dsl.importer(artifact_uri=model_uri, artifact_class=Model, reimport=False)
    games = dsl.importer(artifact_uri=games_uri, artifact_class=Dataset, reimport=False)
    games.set_display_name("import games")
    index = _task(
        index_skills, "index_skills", "index skills", o,
        env=o.env, config_json=params["index_config"], **common,
    )  # fmt: skip
    evaluation = {
        "games": games.output, "skill_index": index.outputs["skill_index"],
        "config_json": eval_config, "algorithm": o.algorithm,
    }  # fmt: skip
    if o.continues_run:  # from the previous chunk's final checkpoint; the start model fixed
        model.set_display_name(f"import checkpoint of round {o.first_round - 1}")
        imported_start = dsl.importer(
            artifact_uri=start_model_uri, artifact_class=Model, reimport=False
        )
        imported_start.set_display_name("import start model")
        start_model, start = imported_start.output, []
        first_model = model.output
    else:
        model.set_display_name("import base model")
        start_model, start = _start(o, model.output, games.output, evaluation, common, params)
        first_model = start_model
    if not o.rounds:
        return {}
    final_model, evaluations = _rounds(
        o, algo, first_model, games.output, index.outputs["skill_index"],
        start=start_model, evaluation=evaluation, **configs, **common,
    )  # fmt: skip
    ends = {"checkpoint": final_model, "start_model": start_model}
    if not o.ends_run:  # the next chunk evaluates (module docstring: chained runs)
        return ends
    final = _task(
        evaluate, "evaluate", "evaluate final checkpoint", o,
        model=final_model, base_model=start_model, label="final", round=o.run_rounds,
        **evaluation, **common,
    )  # fmt: skip
    for task in [*start, *evaluations]:
        final.after(task)  # its before/after plots read the other evaluations
    return ends


def _start(o: PipelineOptions, model: Any, games: Any, evaluation: dict, common: dict, params):
    """The run's first tasks: [evaluate the base model, warm start], evaluate the start
    checkpoint [and its ceiling]; return (start checkpoint, its evaluation tasks)."""
    start_model = model
    if o.warm_start:  # what the model could do before anything was trained
        _task(
            evaluate, "evaluate", "evaluate base model", o,
            model=start_model, base_model=start_model, label="base", round=0, **evaluation,
            **common,
        )  # fmt: skip
        sft = _task(
            warmstart_sft, "warmstart_sft", "warm start (SFT)", o,
            model=start_model, games=games, skill_index=evaluation["skill_index"],
            config_json=params["sft_config"], **common,
        )  # fmt: skip
        start_model = sft.outputs["checkpoint"]
    start = _task(
        evaluate, "evaluate", "evaluate start checkpoint", o,
        model=start_model, base_model=start_model, label="start", round=0, **evaluation,
        **common,
    )  # fmt: skip
    if not o.ceiling:
        return start_model, [start]
    ceiling = _task(
        evaluate, "evaluate", "evaluate start checkpoint, skills in prompt (ceiling)", o,
        model=start_model, base_model=start_model, label="ceiling", round=0, **evaluation,
        **common,
    )  # fmt: skip
    return start_model, [start, ceiling]


def compile_pipeline(options: PipelineOptions, out_path: str | Path) -> Path:
    """Compile the pipeline for `options` to YAML at `out_path` (written atomically)."""
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".yaml", dir=out.parent)
    os.close(fd)
    try:
        compiler.Compiler().compile(build_pipeline(options), package_path=tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a compiled pipeline is not a secret
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
