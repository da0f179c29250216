"""Configs refuse, when built, values that would run wrong: non-finite numbers, unsupported
devices and dtypes, groups of one for group-relative advantages, counts above their limits
(sdar_core.limits), booleans and floats given as counts."""

import json
import math
from pathlib import Path

import pytest
from pydantic import ValidationError

from pipelines.recipe import Recipe, load_recipe
from pipelines.sdar_pipeline import PipelineOptions, compile_pipeline
from sdar_core.cli import main
from sdar_core.devices import DTYPE_NAMES
from sdar_core.envs.alfworld.config import AlfworldConfig
from sdar_core.envs.search.config import SearchConfig
from sdar_core.envs.webshop.config import WebshopConfig
from sdar_core.errors import ConfigError, error_message
from sdar_core.evaluation import EvalConfig
from sdar_core.limits import LIMITS
from sdar_core.models.loading import DTYPES
from sdar_core.models.tiny import TinyModelConfig
from sdar_core.rollout import RolloutConfig
from sdar_core.run import RunConfig
from sdar_core.run.config import check_group_size
from sdar_core.skills import IndexConfig
from sdar_core.teacher import TeacherConfig
from sdar_core.train import SFTConfig, UpdateConfig

RECIPES = Path(__file__).parents[1] / "pipelines" / "recipes"

# each of these was accepted before (checked on the parent commit)
NON_FINITE = [
    (EvalConfig, "temperature", math.inf),
    (RolloutConfig, "temperature", math.inf),
    (IndexConfig, "dense_weight", math.nan),
    (IndexConfig, "bm25_k1", math.inf),
    (SearchConfig, "win_reward", math.nan),
    (SearchConfig, "timeout_s", math.inf),
    (WebshopConfig, "reward_scale", math.nan),
    (TinyModelConfig, "rope_theta", math.inf),
    (UpdateConfig, "weight_decay", math.nan),
    (UpdateConfig, "lr", math.inf),
]


@pytest.mark.parametrize(("cls", "name", "value"), NON_FINITE)
def test_non_finite_numbers_are_refused(cls, name, value):
    with pytest.raises(ValidationError, match=f"{name}\n  Input should be a finite number"):
        cls(**{name: value})


@pytest.mark.parametrize("cls", [EvalConfig, RolloutConfig, TeacherConfig])
@pytest.mark.parametrize("device", ["tpu", "cuda0", "gpu", ""])
def test_unsupported_devices_are_refused_with_the_list(cls, device):
    with pytest.raises(ValidationError, match="choose one of cpu, cuda, cuda:<index>"):
        cls(device=device)


@pytest.mark.parametrize("cls", [EvalConfig, RolloutConfig, TeacherConfig])
def test_unsupported_dtypes_are_refused_with_the_list(cls):
    with pytest.raises(ValidationError, match="unsupported dtype 'int8': choose one of auto"):
        cls(dtype="int8")


@pytest.mark.parametrize("device", ["cpu", "cuda", "cuda:3"])
def test_supported_devices_pass(device):
    assert RolloutConfig(device=device, dtype=None).device == device


def test_the_dtype_names_are_the_loaders():
    assert tuple(DTYPES) == DTYPE_NAMES


@pytest.mark.parametrize("algorithm", ["grpo", "sdar"])
def test_group_of_one_is_refused_for_group_relative_advantages(algorithm):
    with pytest.raises(ValidationError, match="group_size must be >= 2 for"):
        RunConfig(algorithm=algorithm, rollout=RolloutConfig(n_tasks=4, group_size=1))


def test_group_of_one_is_refused_in_the_pipeline_stage_too():
    with pytest.raises(ValueError, match="its grpo advantages compare the members of a group"):
        check_group_size("grpo", 1)
    check_group_size("grpo", 2)
    check_group_size("vanilla", 1)  # does not train: nothing to compare


def test_rounds_0_is_refused_only_for_training_algorithms():
    with pytest.raises(ValidationError, match="sdar trains, so rounds must be >= 1"):
        RunConfig(rounds=0)
    assert RunConfig(algorithm="vanilla", rounds=0).rounds == 0


# ---- upper bounds and whole numbers (sdar_core.limits) --------------------------------------

# every config a user can write, with the fields it requires
CONFIGS = [
    (RunConfig, {}),
    (RolloutConfig, {}),
    (TeacherConfig, {}),
    (UpdateConfig, {}),
    (SFTConfig, {}),
    (EvalConfig, {}),
    (IndexConfig, {}),
    (AlfworldConfig, {"data_dir": "games"}),
    (SearchConfig, {}),
    (WebshopConfig, {}),
    (TinyModelConfig, {}),
    (Recipe, {"name": "r", "description": "d", "model": "Qwen/Qwen2.5-3B"}),
]
# int fields that are not sizes: any whole number is fine
UNBOUNDED = {"seed", "games_seed"}
INT_FIELDS = [
    (cls, required, name)
    for cls, required in CONFIGS
    for name, info in cls.model_fields.items()
    if int in (info.annotation, *getattr(info.annotation, "__args__", ()))
]


def _build(cls, required, **fields):
    return cls.model_validate(required | fields)


def _is_count(cls, name) -> bool:
    """Whether the field is checked by sdar_core.limits (a Count or an OptionalCount)."""
    checks = [
        getattr(getattr(m, "func", None), "__name__", "") for m in cls.model_fields[name].metadata
    ]
    return "_whole_number" in checks


def test_every_int_field_is_a_count():
    assert [f"{c.__name__}.{n}" for c, _, n in INT_FIELDS if not _is_count(c, n)] == []


def test_every_size_like_int_field_has_a_limit():
    assert [f"{c.__name__}.{n}" for c, _, n in INT_FIELDS if n not in {*LIMITS, *UNBOUNDED}] == []


@pytest.mark.parametrize(
    ("cls", "required", "name"),
    [f for f in INT_FIELDS if f[2] in LIMITS],
    ids=lambda x: getattr(x, "__name__", x) if not isinstance(x, dict) else "",
)
def test_a_value_above_the_limit_is_refused_naming_field_and_limit(cls, required, name):
    largest = LIMITS[name]
    with pytest.raises(ValidationError) as err:
        _build(cls, required, **{name: largest + 1})
    message = error_message(err.value)
    assert f"{name} must be <= {largest}, got {largest + 1}" in message
    assert f"SDAR_LIMIT_{name.upper()}={largest + 1}" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("cls", "required", "name"),
    INT_FIELDS,
    ids=lambda x: getattr(x, "__name__", x) if not isinstance(x, dict) else "",
)
@pytest.mark.parametrize(
    ("value", "says"),
    [
        (True, "got true (a boolean)"),
        (2.5, "got 2.5"),
        (2.0, "written without a decimal point or exponent, got 2.0: write 2"),
    ],
)
def test_booleans_and_floats_are_not_counts(cls, required, name, value, says):
    with pytest.raises(ValidationError) as err:
        _build(cls, required, **{name: value})
    assert f"{name} must be a whole number" in error_message(err.value)
    assert says in error_message(err.value)


@pytest.mark.parametrize("value", [True, 2.0])
def test_zero_stage_is_not_a_boolean_or_float(value):
    with pytest.raises(ValidationError, match="zero_stage must be a whole number"):
        UpdateConfig(zero_stage=value)


def test_1e9_rounds_from_json_names_the_limit():
    with pytest.raises(ValidationError, match="rounds must be <= 1000, got 1000000000"):
        RunConfig.model_validate(json.loads('{"rounds": 1e9}'))


def test_nested_stage_fields_are_named_with_their_stage():
    with pytest.raises(ValidationError) as err:
        RunConfig(rollout={"group_size": 10**6})
    assert error_message(err.value).startswith(
        "invalid RunConfig: rollout.group_size: group_size must be <= 256, got 1000000"
    )


def test_an_environment_variable_raises_a_limit(monkeypatch):
    with pytest.raises(ValidationError, match="rounds must be <= 1000"):
        RunConfig(rounds=1500)
    monkeypatch.setenv("SDAR_LIMIT_ROUNDS", "2000")
    assert RunConfig(rounds=1500).rounds == 1500
    with pytest.raises(ValidationError, match="rounds must be <= 2000, got 2001"):
        RunConfig(rounds=2001)
    monkeypatch.setenv("SDAR_LIMIT_ROUNDS", "lots")
    with pytest.raises(ValidationError, match="SDAR_LIMIT_ROUNDS='lots' is not a whole number"):
        RunConfig(rounds=3)


def test_none_stays_allowed_where_it_means_all():
    assert EvalConfig(n_tasks=None).n_tasks is None
    assert UpdateConfig(mini_batch_size=None).mini_batch_size is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"rounds": 10**9}, "rounds must be <= 1000, got 1000000000"),
        ({"rounds": True}, "rounds must be a whole number, got true"),
        ({"num_gpus": 10**6}, "num_gpus must be <= 64, got 1000000"),
    ],
)
def test_pipeline_options_are_bounded(fields, message):
    with pytest.raises(ConfigError, match=message):
        PipelineOptions(**fields).check()


@pytest.mark.parametrize(
    "path",
    sorted(p for p in RECIPES.glob("*.json") if not p.name.endswith(".chain.json")),
    ids=lambda p: p.name,
)  # the chains' manifests (pipelines/chain.py) are not recipes
def test_every_committed_recipe_is_within_the_limits(path):
    for algorithm in ("sdar", "grpo"):
        load_recipe(path).options(algorithm=algorithm).check()


def test_a_compiled_pipeline_carries_the_raised_limits(tmp_path, monkeypatch):
    monkeypatch.setenv("SDAR_LIMIT_GROUP_SIZE", "512")
    options = PipelineOptions(rounds=1, stage_configs={"rollout_config": {"group_size": 512}})
    text = compile_pipeline(options, tmp_path / "p.yaml").read_text()
    assert text.count("name: SDAR_LIMIT_GROUP_SIZE") >= 5  # every task's container
    assert "value: '512'" in text


def test_run_with_absurd_rounds_fails_in_one_line_before_set_up(tmp_path, capsys):
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps({"out_dir": str(tmp_path / "run"), "rounds": 10**9}))
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--config", str(config)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.splitlines()[0] == (
        "error: invalid RunConfig: rounds: rounds must be <= 1000, got 1000000000: a larger "
        "value is refused as a likely mistake; to use it on purpose, set the environment "
        "variable SDAR_LIMIT_ROUNDS=1000000000"
    )
    assert not (tmp_path / "run").exists()
