"""Algorithm presets: one per paper row, internally consistent, validated overrides."""

import pydantic
import pytest
import torch

from sdar_core.algos import (
    Algorithm,
    get_advantage_estimator,
    get_algorithm,
    get_distill_loss,
    get_policy_loss,
    kl_penalty,
    list_agg_modes,
    list_algorithms,
)
from sdar_core.errors import ConfigError

PAPER_ROWS = ["vanilla", "skill_prompt", "grpo", "skill_grpo", "opsd", "grpo_opsd", "skill_sd",
              "rlsd", "sdar"]  # fmt: skip
NEEDS_TEACHER = {"opsd", "grpo_opsd", "skill_sd", "rlsd", "sdar"}


def test_one_preset_per_paper_row() -> None:
    assert list_algorithms() == PAPER_ROWS  # in the paper's row order


@pytest.mark.parametrize("name", PAPER_ROWS)
def test_preset_is_internally_consistent(name: str) -> None:
    algo = get_algorithm(name)
    assert algo.name == name and algo.description
    get_policy_loss(algo.policy_loss)
    get_advantage_estimator(algo.advantage_estimator)
    assert algo.agg_mode in list_agg_modes()
    kl_penalty(torch.zeros(1, 1), torch.zeros(1, 1), algo.kl_kind)
    assert algo.needs_teacher == (name in NEEDS_TEACHER)
    assert algo.needs_teacher == (
        algo.distill_loss != "none" or algo.token_advantage_transform == "rlsd"
    )
    assert algo.trains == (name not in {"vanilla", "skill_prompt"})
    assert algo.student_sees_skills == (name in {"skill_prompt", "skill_grpo"})
    # The named distill loss accepts the preset's kwargs and runs.
    student = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    loss, _ = get_distill_loss(algo.distill_loss)(
        student, torch.tensor([[-0.5, -1.0]]), torch.ones(1, 2), agg_mode=algo.agg_mode,
        **algo.distill_kwargs,
    )  # fmt: skip
    loss.backward()


def test_reference_defaults_and_paper_choices() -> None:
    sdar = get_algorithm("sdar")
    assert (sdar.distill_loss, sdar.distill_kwargs, sdar.distill_coef) == (
        "sdar",
        {"beta": 5.0},
        0.01,
    )
    assert (sdar.kl_coef, sdar.kl_kind, sdar.agg_mode) == (0.01, "low_var_kl", "token-mean")
    assert (sdar.invalid_action_penalty, sdar.group_size, sdar.lr) == (0.1, 8, 1e-6)
    assert get_algorithm("opsd").pg_coef == 0.0
    assert get_algorithm("grpo_opsd").distill_kwargs == {"beta": 0.0}  # gate ≡ 0.5
    assert get_algorithm("rlsd").token_advantage_transform == "rlsd"
    assert get_algorithm("grpo").distill_loss == "none"


def test_search_overrides() -> None:
    search = get_algorithm("sdar").for_env("search")
    assert (search.kl_coef, search.invalid_action_penalty) == (0.001, 0.01)
    assert search.distill_kwargs == {"beta": 5.0}
    assert get_algorithm("sdar").for_env("alfworld") == get_algorithm("sdar")


def test_with_overrides_returns_validated_copy() -> None:
    base = get_algorithm("grpo")
    copy = base.with_overrides(group_size=4, kl_coef=0.0)
    assert (copy.group_size, copy.kl_coef, base.group_size) == (4, 0.0, 8)
    with pytest.raises(ConfigError, match="set group_size to 8"):
        base.with_overrides(group_size=1)
    with pytest.raises(ConfigError, match="overridable fields are .*group_size"):
        base.with_overrides(grup_size=4)
    with pytest.raises(ConfigError, match="cannot override name"):
        base.with_overrides(name="other")
    with pytest.raises(ConfigError, match="policy_loss 'ppo' is unknown: valid names are gspo"):
        base.with_overrides(policy_loss="ppo")
    with pytest.raises(ConfigError, match="not keywords of distill loss 'sdar'.*beta"):
        get_algorithm("sdar").with_overrides(distill_kwargs={"betta": 1.0})
    with pytest.raises(ConfigError, match="distill_coef must be > 0"):
        get_algorithm("sdar").with_overrides(distill_coef=0.0)
    with pytest.raises(ConfigError, match="rlsd must have exactly"):
        get_algorithm("rlsd").with_overrides(token_advantage_kwargs={"lam0": 1.0})


def test_mutating_a_returned_preset_leaves_the_registry_intact() -> None:
    algo = get_algorithm("sdar")
    algo.distill_kwargs["beta"] = 0.0
    algo.per_env_overrides["search"]["kl_coef"] = 1.0
    assert get_algorithm("sdar").distill_kwargs == {"beta": 5.0}
    assert get_algorithm("sdar").for_env("search").kl_coef == 0.001


def test_presets_are_frozen() -> None:
    algo = get_algorithm("sdar")
    with pytest.raises(pydantic.ValidationError):
        algo.beta = 1.0  # type: ignore[attr-defined]
    with pytest.raises(pydantic.ValidationError):
        algo.kl_coef = 1.0  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        Algorithm(name="x", description="y", needs_teacher=True)  # derived, not settable


@pytest.mark.parametrize(
    "override",
    [{"kl_coef": float("nan")}, {"lr": float("inf")}, {"distill_kwargs": {"beta": float("nan")}}],
)
def test_presets_refuse_non_finite_numbers(override):
    with pytest.raises(ConfigError, match="finite number"):
        get_algorithm("sdar").with_overrides(**override)
