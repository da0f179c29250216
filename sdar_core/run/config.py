"""`RunConfig`: the settings of the embedded run (`make run`, `sdar run`).

One field per concern, each stage's own frozen config nested as is, so that every stage setting
maps one-to-one onto the stage config that validates it. The defaults are sized for the tiny
model on 2 CPU cores (the whole run, set-up included, in a few minutes); they are not the
paper's settings (group size 8, 50 steps, 512 tokens), which the cluster profile's users pass.

`ENV_DATA` is the one table of what differs per benchmark in the embedded run: which split the
rollouts and the warm start play, which split evaluation plays, and where the data comes from
(ALFWorld: games generated under out_dir; WebShop and Search-QA: the folders shipped with their
packages). `RunConfig` fills each stage's `env` and `split` from it, unless a stage sets its
split itself; a stage naming another env than the run's is refused. The rollout and evaluation
stages also take the authors' prompt history for the env, and (unless given) a step limit no
longer than theirs (sdar_core.run.paper).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sdar_core.errors import ConfigError
from sdar_core.evaluation.config import EvalConfig
from sdar_core.limits import Count, OptionalCount
from sdar_core.models.shape import TinyModelConfig
from sdar_core.rollout.config import RolloutConfig
from sdar_core.skills.index import IndexConfig
from sdar_core.teacher.config import TeacherConfig
from sdar_core.train.config import SFTConfig, UpdateConfig

__all__ = [
    "ENV_DATA",
    "STAGE_CONFIGS",
    "TRAINING_STAGES",
    "EnvData",
    "RunConfig",
    "check_evaluations",
    "check_group_size",
    "read_config_file",
    "read_json_object",
    "stage_config_json",
]

# pipeline parameter name -> RunConfig field; each value is the stage config as JSON
STAGE_CONFIGS = {
    "index_config": "index",
    "sft_config": "sft",
    "rollout_config": "rollout",
    "teacher_config": "teacher",
    "update_config": "update",
    "eval_config": "eval",
}


@dataclass(frozen=True)
class EnvData:
    """What the embedded run needs to know about one benchmark's data."""

    train_split: str  # rollouts and the warm start
    eval_split: str  # evaluation
    shipped_dir: Callable[[], Path] | None  # the shipped data folder; None: generate games


def _webshop_data() -> Path:
    from sdar_core.envs.webshop import default_data_dir

    return default_data_dir()


def _search_data() -> Path:
    from sdar_core.envs.search import SHIPPED_DIR

    return Path(SHIPPED_DIR)


ENV_DATA: dict[str, EnvData] = {
    "alfworld": EnvData("train", "valid_seen", None),
    "webshop": EnvData("train", "test", _webshop_data),
    "search": EnvData("train", "test", _search_data),
}
# advantage estimators that compare each sample with the rest of its group: a group of one has
# nothing to compare with (GRPO's advantage is 0, RLOO's leave-one-out mean is undefined)
GROUP_RELATIVE_ESTIMATORS = ("grpo", "rloo")
# stage field -> which split of ENV_DATA it plays
_STAGE_SPLITS = {"rollout": "train_split", "sft": "train_split", "eval": "eval_split"}
# what the miniature world (sdar_core.envs.alfworld.miniature) changes in the embedded run, unless
# a stage sets the field itself: its own skill library (one skill per object kind, no general
# skill); a warm start whose expert searches at random and, in half of its episodes, reads the
# skills (12 epochs in mini-batches of 8, on a model 256 wide: measured, the 128-wide default
# or 5 epochs in batches of 32 leave the model unable to copy names from its prompt); a step
# limit of 7 (4 is the optimum: a searching policy has time for four receptacles, one that knows
# where things are kept needs one); and
# evaluation sampled at temperature 0.4 as the authors validate, twice per game
MINIATURE_RUN_FIELDS = {
    "warm_start": True, "n_train_games": 64, "n_valid_games": 32,
    "tiny_model": {"hidden_size": 256, "intermediate_size": 512},
}  # fmt: skip
MINIATURE_STAGE_FIELDS: dict[str, dict[str, Any]] = {
    "index": {"library": "miniature", "dense": False},
    "sft": {
        "n_tasks": None, "max_steps": 12, "history_length": 1, "explore": "random",
        "skills_fraction": 0.5, "include_general": False, "think_words": 0,
        "epochs": 12, "lr": 1e-3, "lr_schedule": "cosine", "min_lr_ratio": 0.1,
        "mini_batch_size": 8,
    },
    "rollout": {"max_steps": 7, "history_length": 1, "n_tasks": 8, "group_size": 8,
                "max_new_tokens": 32},
    "teacher": {"include_general": False},
    "update": {"lr": 3e-4, "mini_batch_size": 64},
    "eval": {"max_steps": 7, "history_length": 1, "max_new_tokens": 32,
             "decoding": "sample", "temperature": 0.4, "k": 2},
}  # fmt: skip
# what the second miniature world (sdar_core.envs.alfworld.miniature2: two conventions per task,
# closed places) changes: its skill library, retrieved one skill per task (the task's kind); a
# warm start on the "warmup" split (other kinds, conventions drawn per game and stated by a
# per-game skill in half of the episodes, so it teaches reading skills, not this world's
# conventions; a searching expert needs up to ~16 steps there); a step limit of 7 (5 is the
# optimum: one wrong guess is allowed); evaluation as in the first miniature
MINIATURE2_RUN_FIELDS = MINIATURE_RUN_FIELDS | {"n_warmup_games": 96}
MINIATURE2_STAGE_FIELDS: dict[str, dict[str, Any]] = {
    "index": {"library": "miniature2", "dense": False},
    "sft": MINIATURE_STAGE_FIELDS["sft"] | {"split": "warmup", "max_steps": 20, "skill_detours": 2},
    "rollout": MINIATURE_STAGE_FIELDS["rollout"] | {"skills_k": 1},
    "teacher": {"include_general": False, "skills_k": 1},
    "update": MINIATURE_STAGE_FIELDS["update"],
    "eval": MINIATURE_STAGE_FIELDS["eval"],
}  # fmt: skip
# the miniature worlds' run and stage fields (the run's defaults unless a stage sets a field)
MINIATURE_WORLDS: dict[str, tuple[dict[str, Any], dict[str, dict[str, Any]]]] = {
    "miniature": (MINIATURE_RUN_FIELDS, MINIATURE_STAGE_FIELDS),
    "miniature2": (MINIATURE2_RUN_FIELDS, MINIATURE2_STAGE_FIELDS),
}


def env_data(env: str) -> EnvData:
    """`ENV_DATA[env]`, or a ConfigError naming the benchmarks the embedded run knows."""
    if env not in ENV_DATA:
        raise ConfigError(
            f"the embedded run does not know env={env!r}: choose one of {sorted(ENV_DATA)}"
        )
    return ENV_DATA[env]


def _scale_paper_settings(env: str, stage: str, fields: dict, *, default: bool) -> None:
    """The embedded run keeps the authors' prompt history per benchmark, and its step limit
    within theirs (Search-QA plays 4 steps with a history of 4; sdar_core.run.paper)."""
    from sdar_core.run.paper import paper_fields

    paper = paper_fields(env, stage) if stage in ("rollout", "eval") else {}
    if "history_length" in paper:
        fields.setdefault("history_length", paper["history_length"])
    if default and "max_steps" in paper and "max_steps" in fields:
        fields["max_steps"] = min(fields["max_steps"], paper["max_steps"])


def _ceiling_default(env: str, world: str, algorithm: str | None) -> bool:
    """The ceiling evaluation by default: in the miniature worlds (whose skills make a near-perfect
    policy of the checkpoint that reads them) for presets whose teacher reads skills."""
    from sdar_core.algos import get_algorithm

    name = algorithm if algorithm is not None else RunConfig.model_fields["algorithm"].default
    try:
        algo = get_algorithm(name)
    except ConfigError:
        return False  # the after-validator names the unknown preset
    return env == "alfworld" and world in MINIATURE_WORLDS and algo.needs_teacher


def check_evaluations(algorithm: str, algo: Any, eval_every: int | None, ceiling: bool) -> None:
    """The extra evaluations (RunConfig and PipelineOptions): eval_every >= 1; the ceiling only
    for a preset whose start evaluation has no skills in the prompt (with them, it is the
    ceiling)."""
    if eval_every is not None and eval_every < 1:
        raise ConfigError(
            f"eval_every must be >= 1, got {eval_every}: e.g. 1 (every round), or leave it "
            "unset for the start and final evaluations only"
        )
    if ceiling and algo.student_sees_skills:
        raise ConfigError(
            f"{algorithm} puts the skills in the student's prompt already, so its start "
            "evaluation is the ceiling: set ceiling to false"
        )


def check_group_size(algorithm: str, group_size: int) -> None:
    """Raise ConfigError when `algorithm` trains with a group-relative estimator and groups of
    fewer than 2 members."""
    from sdar_core.algos import get_algorithm

    algo = get_algorithm(algorithm)
    estimator = algo.advantage_estimator
    if algo.trains and estimator in GROUP_RELATIVE_ESTIMATORS and group_size < 2:
        raise ConfigError(
            f"group_size must be >= 2 for {algorithm} (its {estimator} advantages compare the "
            f"members of a group), got {group_size}: set rollout group_size to 8"
        )


# the stages that train: each takes `lora` from RunConfig.lora unless it sets it itself
TRAINING_STAGES = ("sft", "update")


def _resolve_lora(data: dict[str, Any]) -> None:
    """Set `lora` in each training stage that does not set it: the run's `lora` when given, else
    True for a given (pretrained) model trained on CPU and False otherwise (the tiny models,
    or a GPU, train all weights). An explicit `lora: false` keeps full fine-tuning."""
    run_lora = data.get("lora")
    for name in TRAINING_STAGES:
        fields = _explicit_fields(name, data.get(name))
        if "lora" in fields:
            continue
        if run_lora is None:
            on_cpu = str(fields.get("device", "cpu")).split(":")[0] == "cpu"
            lora = data.get("model") is not None and on_cpu
        else:
            lora = bool(run_lora)
        data[name] = fields | {"lora": lora}


def _explicit_fields(name: str, value: Any) -> dict[str, Any]:
    """The fields a stage config was given (not its class defaults), as a dict."""
    if value is None:
        value = RunConfig.model_fields[name].default
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_unset=True)
    return dict(value)


def _given_fields(name: str, value: Any) -> dict[str, Any]:
    """The fields the caller set in a stage config (none when it gave no config)."""
    return {} if value is None else _explicit_fields(name, value)


class RunConfig(BaseModel):
    """Settings of one embedded pipeline run."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    out_dir: Path = Field(default=Path("runs/embedded"), description="model, games, MLflow store")
    model: str | None = Field(
        default=None,
        description="model folder, .gguf file, packaged model (smollm2) or hub id; "
        "None: the tiny model built under out_dir",
    )
    tiny_model: TinyModelConfig = Field(
        default=TinyModelConfig(),
        description="shape of the tiny model built under out_dir when no model is given",
    )
    world: Literal["miniature", "miniature2", "alfworld"] = Field(
        default="miniature",
        description="the generated ALFWorld-engine games: 'miniature' (a small world with "
        "household conventions that the skills state; not ALFWorld), 'miniature2' (two "
        "conventions per task and a warm start on other kinds; not ALFWorld) or 'alfworld' "
        "(rooms and task types as in ALFWorld); only for env=alfworld",
    )
    n_warmup_games: Count = Field(
        default=0, description="warm-up games of world 'miniature2' (its warm start plays them)"
    )
    balanced_kinds: bool = Field(
        default=False,
        description="world 'miniature': give every object kind an equal share of the generated "
        "training and evaluation games (game i has kind i mod 8); False: each game's kind drawn "
        "at random",
    )
    data: Path | None = Field(
        default=None,
        description="the env's data folder (ALFWorld games, WebShop data files, Search-QA "
        "parquet + corpus); None: games generated under out_dir (ALFWorld) or the shipped data",
    )
    lora: bool | None = Field(
        default=None,
        description="train LoRA adapters in the warm start and the updates (a stage's own "
        "lora wins); None: LoRA for a given model on CPU, all weights for the tiny models",
    )
    algorithm: str = Field(default="sdar", description="preset name (sdar algorithms)")
    env: str = "alfworld"
    rounds: Count = Field(default=2, description="rollout -> teacher -> update rounds (R)")
    rounds_per_run: OptionalCount = Field(
        default=None,
        description="run the rounds as a chain of pipeline runs of at most this many rounds "
        "each, as on a cluster (pipelines.sdar_pipeline.split_run); None: one pipeline run",
    )
    warm_start: bool = Field(default=False, description="supervised warm start on expert play")
    eval_every: OptionalCount = Field(
        default=None,
        description="also evaluate the checkpoint of every k-th round (not the last: the final "
        "evaluation covers it), in the same eval/... series at step = round; None: the start "
        "and final checkpoints only",
    )
    ceiling: bool | None = Field(
        default=None,
        description="evaluate the start checkpoint once more with the retrieved skills in its "
        "prompt, as the teacher sees them (eval_ceiling/...: the teacher's ceiling); None: yes "
        "in the miniature worlds for presets whose teacher reads skills, else no",
    )
    n_train_games: Count = Field(default=12, description="generated training games (ALFWorld)")
    n_valid_games: Count = Field(
        default=12, description="evaluation games: generated (ALFWorld) or the first of the split"
    )
    games_seed: Count = 0
    experiment: str = "sdar"
    tracking_uri: str | None = Field(
        default=None, description="MLflow URI; None: sqlite:///<out_dir>/mlflow.db"
    )
    resume: bool = Field(
        default=True,
        description="reuse the finished stages of an earlier run of the same settings in out_dir "
        "(and its MLflow run); False: a new MLflow run in which every stage runs",
    )
    warm_tasks: bool = Field(
        default=True,
        description="run each pipeline task in a process forked from one that imported torch, "
        "transformers and sdar_core once (pipelines/warm_tasks.py); False: a fresh Python per "
        "task, as kfp.local starts them (~7 s of imports each)",
    )
    index: IndexConfig = IndexConfig()
    sft: SFTConfig = SFTConfig(n_tasks=6, max_steps=20)
    rollout: RolloutConfig = RolloutConfig(n_tasks=4, group_size=4, max_steps=6, max_new_tokens=16)
    # the library defaults: the general skills + the task type's skill (~1,000 tiny-tokenizer
    # tokens for ALFWorld), as a cluster run gets them
    teacher: TeacherConfig = TeacherConfig()
    # several optimizer steps per round (the authors take 256-sample mini-batches)
    update: UpdateConfig = UpdateConfig(lr=1e-4, mini_batch_size=32)
    eval: EvalConfig = EvalConfig(max_steps=6, max_new_tokens=16)

    @model_validator(mode="before")
    @classmethod
    def _stages_play_the_run_env(cls, data: Any) -> Any:
        """Each data stage plays `env`, on the split ENV_DATA gives it unless it names one."""
        if not isinstance(data, dict):
            return data
        env = data.get("env", cls.model_fields["env"].default)
        splits = env_data(env)
        data = dict(data)
        lr_given = "lr" in _given_fields("update", data.get("update"))
        world = data.get("world", cls.model_fields["world"].default)
        if env == "alfworld" and world in MINIATURE_WORLDS:
            run_fields, stage_fields = MINIATURE_WORLDS[world]
            for name, value in run_fields.items():
                data.setdefault(name, value)
            for name, defaults in stage_fields.items():
                fields = _explicit_fields(name, data.get(name))
                given = data.get(name) is not None
                data[name] = defaults | fields if given else fields | defaults
        if data.get("model") is not None and not lr_given:
            # the embedded lr (1e-4, 3e-4 in the miniature) is for the tiny models trained from
            # scratch; a pretrained model trains at its algorithm's, the authors' 1e-6
            data["update"] = _explicit_fields("update", data.get("update")) | {"lr": None}
        _resolve_lora(data)
        for name, split_field in _STAGE_SPLITS.items():
            given = data.get(name)
            fields = _explicit_fields(name, given)
            _scale_paper_settings(env, name, fields, default=given is None)
            if fields.setdefault("env", env) != env:
                raise ConfigError(
                    f"{name}.env={fields['env']!r} but the run plays env={env!r}: "
                    f"drop {name}.env or set env to {fields['env']!r}"
                )
            fields.setdefault("split", getattr(splits, split_field))
            data[name] = fields
        if data.get("ceiling") is None:
            data["ceiling"] = _ceiling_default(env, world, data.get("algorithm"))
        if splits.shipped_dir is not None or data.get("data") is not None:
            # shipped or given data: evaluate n_valid_games of its split
            n_valid = data.get("n_valid_games", cls.model_fields["n_valid_games"].default)
            data["eval"].setdefault("n_tasks", n_valid)
        return data

    @model_validator(mode="after")
    def _check(self) -> RunConfig:
        from sdar_core.algos import get_algorithm

        algo = get_algorithm(self.algorithm)  # raises with the list of names
        if self.rounds < 0:
            raise ConfigError(f"rounds must be >= 0, got {self.rounds}: set rounds to 2")
        if algo.trains and self.rounds == 0:
            raise ConfigError(
                f"{self.algorithm} trains, so rounds must be >= 1, got 0: set rounds to 2, or "
                "choose an algorithm that only evaluates (vanilla, skill_prompt)"
            )
        check_group_size(self.algorithm, self.rollout.group_size)
        if self.data is None and self.n_train_games < self.rollout.n_tasks:
            raise ConfigError(
                f"rollout.n_tasks={self.rollout.n_tasks} needs at least that many training "
                f"games, got n_train_games={self.n_train_games}: raise n_train_games"
            )
        check_evaluations(self.algorithm, algo, self.eval_every, bool(self.ceiling))
        if self.n_valid_games < 1:
            raise ConfigError("n_valid_games must be >= 1: set it to 12")
        if self.balanced_kinds and (self.world != "miniature" or self.data is not None):
            raise ConfigError(
                f"balanced_kinds applies to generated games of world 'miniature', got world="
                f"{self.world!r}" + (f" and data={self.data}" if self.data else "") + ": set "
                "balanced_kinds to false, or world to 'miniature' without data"
            )
        if self.world == "miniature2" and self.warm_start and self.n_warmup_games < 1:
            raise ConfigError(
                "world 'miniature2' warm-starts on its warm-up games, got n_warmup_games=0: "
                "set n_warmup_games to 96, or warm_start to false"
            )
        return self

    def with_seed(self, seed: int) -> RunConfig:
        """A copy whose rollout, update, warm-start and teacher (retrieval noise) seeds are
        `seed` (the games and the evaluation set stay fixed, so seeds of one algorithm are
        comparable)."""
        stages = {
            name: getattr(self, name).model_validate(
                getattr(self, name).model_dump() | {"seed": seed}
            )
            for name in ("rollout", "update", "sft", "teacher")
        }
        return self.model_validate(self.model_dump() | stages)

    def resolved_tracking_uri(self) -> str:
        from sdar_core.tracking.store import sqlite_uri

        return self.tracking_uri or sqlite_uri(self.out_dir / "mlflow.db")


def read_json_object(path: str | Path, *, what: str, write: str, example: str) -> dict[str, Any]:
    """The JSON object in the file `path` (a `what`: "config file", "recipe"), with errors that
    name the file and say to write `write`, e.g. `example`."""
    path = Path(path)
    try:
        fields = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"cannot read the {what} {path}: {err.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(
            f"the {what} {path} is not valid JSON ({err}): fix it, or write {write}"
        ) from None
    if not isinstance(fields, dict):
        raise ConfigError(
            f"the {what} {path} holds a JSON {type(fields).__name__}: write {write}, e.g. {example}"
        )
    return fields


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The fields of a RunConfig JSON file (`sdar run --config`), with errors naming the file."""
    return read_json_object(
        path,
        what="config file",
        write="the RunConfig fields as one JSON object",
        example='{"rounds": 2}',
    )


def stage_config_json(config: RunConfig) -> dict[str, str]:
    """The pipeline's config parameters: {parameter name: the stage config as JSON}."""
    return {
        param: json.dumps(getattr(config, field).model_dump(mode="json"), sort_keys=True)
        for param, field in STAGE_CONFIGS.items()
    }
