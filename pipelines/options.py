"""What a compiled SDAR pipeline is made of, before any graph is built: the compile-time choices
(`PipelineOptions`: algorithm, env, rounds, profile, GPUs, volumes, the chunk of a chained run
it is), the split of a long run into chunks (`split_run`, `last_round_of_run`), and the default
JSON of every stage-config parameter on each profile with the options' fields laid over it
(`default_stage_configs`, `stage_config_defaults`), checked as each stage will build it.
pipelines/sdar_pipeline.py turns these into the KFP graph."""

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pipelines.profiles import PROFILES, Profile
from sdar_core.errors import ConfigError
from sdar_core.limits import check_limit, check_whole_number

__all__ = [
    "PipelineOptions",
    "default_stage_configs",
    "eval_rounds",
    "last_round_of_run",
    "split_run",
    "stage_config_defaults",
]

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
    # held-out evaluation of every eval_every-th update's checkpoint too (rounds n = k, 2k, ..
    # of the run, the last round excluded: the final evaluation covers it), logged in the same
    # eval/... series at step n; None: the start and final checkpoints only
    eval_every: int | None = None
    # evaluate the start checkpoint once more with the retrieved skills in its prompt, as the
    # teacher sees them (label "ceiling", series eval_ceiling/...): the teacher's ceiling
    ceiling: bool = False

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
        _check_evaluations(self, algo)
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


def eval_rounds(o: PipelineOptions) -> list[int]:
    """The rounds n (1-based, the run's numbering) after whose update this pipeline evaluates
    the checkpoint besides the final evaluation: every `eval_every`-th, not the run's last."""
    if o.eval_every is None:
        return []
    updates = range(o.first_round + 1, o.first_round + o.rounds + 1)
    return [n for n in updates if n % o.eval_every == 0 and n != o.run_rounds]


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


def _check_evaluations(o: PipelineOptions, algo: Any) -> None:
    """eval_every is a whole number within its limit; then RunConfig's own check."""
    from sdar_core.run.config import check_evaluations

    if o.eval_every is not None:
        check_whole_number("eval_every", o.eval_every)
        check_limit("eval_every", o.eval_every)
    check_evaluations(o.algorithm, algo, o.eval_every, o.ceiling)


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
