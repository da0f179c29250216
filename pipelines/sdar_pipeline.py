"""The SDAR pipeline factory and its compilation.

    start_tracking ─┐ (run id to every stage)
    model, games (importers) ─► index_skills ─► [warmstart_sft] ─► evaluate(start)
        └► R × (generate_rollouts ─► [score_teacher] ─► sdar_update) ─► evaluate(final)

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
default is the profile's (`default_stage_configs`) with any fields the options give laid over it
(`PipelineOptions.stage_configs`, e.g. from a recipe: pipelines/recipe.py). The
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

import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
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
from pipelines.profiles import PROFILES, RETRIED_STAGES, RETRY, SHM_MOUNT, Profile
from sdar_core.errors import ConfigError
from sdar_core.limits import check_limit, check_whole_number, overrides

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
WORKSPACE_SIZE = "256Gi"  # Qwen2.5-3B: ≈ 43 GB per state folder, 3 at once while an update prunes
_CLUSTER_STAGE_FIELDS = {"device": "cuda"}  # stage configs' defaults on the cluster profile
# On GPUs the rollout's log-probs come from vLLM's sampler, whose kernels differ from the
# training engine's; the update recomputes them with the training engine before its first step,
# as the authors' trainer does ("old log-probs"), and logs the gap (update/logprob_gap/*).
_CLUSTER_UPDATE_FIELDS = {"recompute_old_logprobs": True, "weights_dtype": "bfloat16"}
# (bfloat16 weights in the checkpoint artifact: what vLLM and the teacher run in; a float32
# update keeps its float32 weights in the trainer state, on the shared volume)


@dataclass(frozen=True)
class PipelineOptions:
    """Compile-time choices (they change the graph or its resources)."""

    algorithm: str = "sdar"
    env: str = "alfworld"
    rounds: int | None = None  # None: 2 for presets that train, 0 for those that do not
    warm_start: bool = False
    profile: Profile = "cluster"
    num_gpus: int = 1
    pvc_name: str | None = None
    mlflow_secret: str | None = None  # Kubernetes secret with MLflow username / password
    exit_handler: bool = True  # end the MLflow run FAILED / KILLED however the pipeline ends
    # GPU tasks: node labels they must run on, and whether they tolerate the usual GPU taint
    # (nvidia.com/gpu, NoSchedule)
    gpu_node_selector: tuple[tuple[str, str], ...] = ()
    gpu_toleration: bool = False
    model_uri: str | None = None  # default of the model_uri parameter; None: required
    games_uri: str | None = None  # default of the games_uri parameter; None: required
    # stage-config fields laid over the profile's defaults, by parameter name, e.g.
    # {"update_config": {"backend": "deepspeed"}}: the parameters' compiled-in defaults
    stage_configs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, hash=False)
    note: str | None = None  # appended to the pipeline's description (a recipe names its model)
    # A chunk of a chained run (module docstring): this pipeline runs rounds first_round ..
    # first_round + rounds - 1 of a run of total_rounds rounds (None: first_round + rounds, i.e.
    # this pipeline ends the run).
    first_round: int = 0
    total_rounds: int | None = None
    # the cluster profile's KFP workspace (the trainer state's volume without a PVC); None: no
    # workspace (a backend before 2.14), the state then travels inside the checkpoints
    workspace_size: str | None = WORKSPACE_SIZE
    # memory request and limit of the update pods, e.g. "113Gi": every rank reads the module
    # and its optimizer shard into host memory when it resumes (sdar_core.train.memory, sized
    # there from the model); None: the profile's
    update_memory: str | None = None

    def __post_init__(self) -> None:
        if self.rounds is None:
            from sdar_core.algos import get_algorithm

            trains = get_algorithm(self.algorithm).trains
            object.__setattr__(self, "rounds", 2 if trains else 0)

    def check(self) -> Any:
        """Validate; return the algorithm preset."""
        from sdar_core.algos import get_algorithm
        from sdar_core.envs import list_envs

        algo = get_algorithm(self.algorithm)
        for name in ("rounds", "num_gpus"):  # the others are checked by their configs
            check_whole_number(name, getattr(self, name))
            check_limit(name, getattr(self, name))
        _check_chunk(self, algo)
        if self.env not in list_envs():
            raise ConfigError(f"unknown env {self.env!r}: choose one of {list_envs()}")
        if self.profile not in PROFILES:
            raise ConfigError(f"unknown profile {self.profile!r}: choose one of {list(PROFILES)}")
        if algo.trains and self.rounds < 1:
            raise ConfigError(f"{self.algorithm} trains: rounds must be >= 1, got {self.rounds}")
        if not algo.trains and self.rounds != 0:
            raise ConfigError(
                f"{self.algorithm} does not train (it evaluates the start checkpoint): set "
                f"rounds to 0, got {self.rounds}"
            )
        for name in ("update_memory", "workspace_size"):
            value = getattr(self, name)
            if value is not None and not re.fullmatch(r"[1-9][0-9]*(Mi|Gi|Ti)", value):
                raise ConfigError(
                    f'{name} must be whole Mi, Gi or Ti (no decimals), got {value!r}: e.g. "113Gi"'
                )
        if self.num_gpus < 1:
            raise ConfigError(f"num_gpus must be >= 1, got {self.num_gpus}: set it to 1")
        _check_stage_configs(self, algo)
        return algo

    @property
    def run_rounds(self) -> int:
        """The rounds of the whole run (of the chain, for a chunk)."""
        return self.first_round + self.rounds if self.total_rounds is None else self.total_rounds

    @property
    def continues_run(self) -> bool:
        """A chunk after the first: it starts from the previous chunk's final checkpoint."""
        return self.first_round > 0

    @property
    def ends_run(self) -> bool:
        """This pipeline runs the run's last round (or the run is one pipeline)."""
        return self.first_round + self.rounds == self.run_rounds

    @property
    def chained(self) -> bool:
        return self.continues_run or not self.ends_run

    @property
    def name(self) -> str:
        base = f"sdar-{self.env}-{self.algorithm}-r{self.run_rounds}".replace("_", "-")
        if not self.chained:
            return base
        return f"{base}-rounds-{self.first_round}-{self.first_round + self.rounds - 1}"


def last_round_of_run(o: PipelineOptions, r: int) -> bool:
    """Whether round `r` is the last round this pipeline run executes: its update's checkpoint
    is what the next chunk of a chained run starts from (so, where the trainer state lives on a
    volume that does not outlive the pipeline run, that update must also put the state into its
    checkpoint). True for the run's very last round too; `o.ends_run` tells them apart."""
    return r == o.first_round + o.rounds - 1


def split_run(options: PipelineOptions, rounds_per_run: int | None) -> list[PipelineOptions]:
    """The run `options` (a whole run) as chunks of at most `rounds_per_run` rounds, in order;
    `[options]` when it fits in one (or rounds_per_run is None, or nothing trains)."""
    if options.chained:
        raise ConfigError(f"{options.name} is a chunk already: split the whole run")
    if rounds_per_run is not None:
        check_whole_number("rounds_per_run", rounds_per_run)
        if rounds_per_run < 1:
            raise ConfigError(f"rounds_per_run must be >= 1, got {rounds_per_run}")
    total = options.rounds
    if rounds_per_run is None or rounds_per_run >= total:
        return [options]
    return [
        replace(options, first_round=s, rounds=min(rounds_per_run, total - s), total_rounds=total)
        for s in range(0, total, rounds_per_run)
    ]


def _check_chunk(o: PipelineOptions, algo: Any) -> None:
    """A chunk's rounds lie inside its run's, and only a run that trains is chained."""
    check_whole_number("first_round", o.first_round)
    if o.total_rounds is not None:
        check_whole_number("total_rounds", o.total_rounds)
    end = o.first_round + o.rounds
    if o.total_rounds is not None and o.total_rounds < end:
        raise ConfigError(
            f"total_rounds={o.total_rounds} is less than first_round + rounds = {end}: a chunk "
            "ends at or before its run's last round"
        )
    if o.chained and not algo.trains:
        raise ConfigError(
            f"{o.algorithm} does not train: it cannot be chained (leave first_round at 0 and "
            "total_rounds unset)"
        )
    if o.chained and o.rounds < 1:
        raise ConfigError(f"a chunk of a chained run needs rounds >= 1, got {o.rounds}")


def default_stage_configs(profile: Profile, env: str = "alfworld") -> dict[str, str]:
    """Default JSON of each stage-config parameter: the embedded run's sizes on "local"; on a
    GPU ("cluster"), the authors' settings for `env` (sdar_core.run.paper: steps, history,
    validation sampling, mini-batch size, warm-up) on the env's splits."""
    from sdar_core.run import RunConfig, stage_config_json
    from sdar_core.run.config import STAGE_CONFIGS, env_data
    from sdar_core.run.paper import paper_fields

    if profile == "local":  # make local-run plays games of the alfworld world (sdar gen-games)
        return stage_config_json(RunConfig(env=env, world="alfworld"))
    splits = env_data(env)
    per_stage = {
        "sft_config": {"env": env, "split": splits.train_split},
        "rollout_config": {"env": env, "split": splits.train_split} | paper_fields(env, "rollout"),
        "teacher_config": {},
        "update_config": _CLUSTER_UPDATE_FIELDS | paper_fields(env, "update"),
        "eval_config": {"env": env, "split": splits.eval_split} | paper_fields(env, "eval"),
    }
    return {
        p: json.dumps(_CLUSTER_STAGE_FIELDS | per_stage[p] if p in per_stage else {})
        for p in STAGE_CONFIGS
    }


def stage_config_defaults(options: PipelineOptions) -> dict[str, str]:
    """The default JSON of each stage-config parameter: the profile's (`default_stage_configs`)
    with `options.stage_configs` laid over it field by field."""
    defaults = default_stage_configs(options.profile, options.env)
    for param, fields in options.stage_configs.items():
        defaults[param] = json.dumps(json.loads(defaults[param]) | dict(fields))
    return defaults


def _check_stage_configs(options: PipelineOptions, algo: Any) -> None:
    """Build the stage configs `options` lays over the defaults as each stage will build them,
    so that a wrong field fails the compile rather than a pod hours into the run."""
    from pydantic import ValidationError

    from sdar_core.errors import error_message
    from sdar_core.run.config import STAGE_CONFIGS, RunConfig, check_group_size

    unknown = sorted(set(options.stage_configs) - set(STAGE_CONFIGS))
    if unknown:
        raise ConfigError(
            f"unknown stage config {', '.join(unknown)}: choose from {', '.join(STAGE_CONFIGS)}"
        )
    merged = {p: json.loads(v) for p, v in stage_config_defaults(options).items()}
    built = {}
    for param in options.stage_configs:
        cls = RunConfig.model_fields[STAGE_CONFIGS[param]].annotation
        fields = merged[param]
        _check_field_names(param, cls, fields)
        if param == "update_config" and algo.trains:  # as the update stage completes it
            fields = fields | {
                "algorithm": options.algorithm,
                "total_iterations": options.run_rounds,
            }
        try:
            built[param] = cls.model_validate(fields)
        except ValidationError as err:
            raise ConfigError(f"{param}: {error_message(err)}") from None
    if "rollout_config" in built and algo.trains:
        check_group_size(options.algorithm, built["rollout_config"].group_size)
    update = built.get("update_config")
    if update is not None and options.num_gpus > 1 and update.backend != "deepspeed":
        raise ConfigError(
            f"num_gpus={options.num_gpus} runs the update under DeepSpeed's launcher, but "
            f'update_config.backend is {update.backend!r}: set it to "deepspeed" (or num_gpus '
            "to 1)"
        )


def _check_field_names(param: str, cls: Any, fields: Mapping[str, Any]) -> None:
    """Refuse a field `cls` does not have, naming the closest one."""
    from sdar_core.errors import closest_name_fix

    known = list(cls.model_fields)
    for name in fields:
        if name not in known:
            fix = closest_name_fix(name, known, noun="fields")
            raise ConfigError(f"{param}.{name} is not a field of {cls.__name__}: {fix}")


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


def _rounds(o: PipelineOptions, algo: Any, model: Any, games: Any, index: Any, **params) -> Any:
    """Add the unrolled rounds first_round .. first_round + rounds - 1 from the checkpoint `model`
    (KL reference: `start`, default `model`); return the final checkpoint (an output channel)."""
    common = {"tracking_uri": params["tracking_uri"], "run_id": params["run_id"]}
    start = params.pop("start", model)  # the KL reference of every round's update
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
    return model


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
        start_model, start = imported_start.output, None
        first_model = model.output
    else:
        model.set_display_name("import base model")
        start_model, start = _start(o, model.output, games.output, evaluation, common, params)
        first_model = start_model
    if not o.rounds:
        return {}
    final_model = _rounds(
        o, algo, first_model, games.output, index.outputs["skill_index"],
        start=start_model, **configs, **common,
    )  # fmt: skip
    ends = {"checkpoint": final_model, "start_model": start_model}
    if not o.ends_run:  # the next chunk evaluates (module docstring: chained runs)
        return ends
    final = _task(
        evaluate, "evaluate", "evaluate final checkpoint", o,
        model=final_model, base_model=start_model, label="final", round=o.run_rounds,
        **evaluation, **common,
    )  # fmt: skip
    if start is not None:
        final.after(start)  # its before/after plot reads the start evaluation
    return ends


def _start(o: PipelineOptions, model: Any, games: Any, evaluation: dict, common: dict, params):
    """The run's first tasks: [evaluate the base model, warm start], evaluate the start
    checkpoint; return (start checkpoint, its evaluation task)."""
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
    return start_model, start


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
