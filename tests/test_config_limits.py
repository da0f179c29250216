"""Configs refuse, when built, values that would run wrong: non-finite numbers, unsupported
devices and dtypes, groups of one for group-relative advantages."""

import math

import pytest
from pydantic import ValidationError

from sdar_core.devices import DTYPE_NAMES
from sdar_core.envs.search.config import SearchConfig
from sdar_core.envs.webshop.config import WebshopConfig
from sdar_core.evaluation import EvalConfig
from sdar_core.models.loading import DTYPES
from sdar_core.models.tiny import TinyModelConfig
from sdar_core.rollout import RolloutConfig
from sdar_core.run import RunConfig
from sdar_core.run.config import check_group_size
from sdar_core.skills import IndexConfig
from sdar_core.teacher import TeacherConfig
from sdar_core.train import UpdateConfig

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
