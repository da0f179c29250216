"""Algorithm presets: one frozen, validated `Algorithm` per row of the paper's Table 1.

`get_algorithm(name)` returns the preset; `with_overrides(**kw)` returns a validated copy and
`for_env(env)` applies the preset's per-environment overrides (DESIGN.md §1: Search uses KL 0.001
and invalid-action penalty 0.01). Every loss, estimator and KL kind is named, and the names are
checked against the registries when a preset is built.

Every training preset follows the authors' scripts (ZJU-REAL/SDAR, read 2026-12):
- GRPO statistics pool every step sample of a group (`stats_over="step"`, their
  `compute_mean_std_cross_steps=True`), on per-step rewards `episode_reward − penalty × [this
  step's action was invalid]`;
- an entropy bonus `entropy_coeff = 0.001` is subtracted from the actor loss (verl's default,
  which every SDAR script keeps);
- `opsd` is their gated loss (the `sdar` loss, β = 5) with the policy-gradient weight 0;
- `grpo_opsd` is the `sdar` loss with β = 0 (gate ≡ 0.5), as they run it;
- `skill_sd`: coefficient 0.001, k3 not clamped from above, only the log-ratio clamped at 10;
- `rlsd`: λ0 = 0.5 decaying linearly to 0 over 100 training iterations (counted from 1), ε = 0.2,
  the gap taken from the rollout-time log-probs.
`needs_teacher` is derived (distill_loss != "none" or a token-advantage transform is set), so it
cannot disagree with the rest of the preset. The `opsd` distill loss (ungated, weight 1 on every
token) stays in the registry for experiments; no preset uses it.
"""

import inspect
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, computed_field, model_validator

from sdar_core.algos.advantages import list_advantage_estimators
from sdar_core.algos.agg import list_agg_modes
from sdar_core.algos.distill import get_distill_loss, list_distill_losses
from sdar_core.algos.kl import list_kl_penalties
from sdar_core.algos.policy_loss import list_policy_losses
from sdar_core.algos.registry import Registry
from sdar_core.algos.rlsd import rlsd_lambda
from sdar_core.errors import ConfigError

ALGORITHMS: Registry["Algorithm"] = Registry("algorithm")
_NOT_OVERRIDABLE = {"name", "per_env_overrides"}
_RLSD_KEYS = {"lam0", "decay_steps", "eps"}


class Algorithm(BaseModel):
    """Everything that distinguishes one training method from another, by name and number."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    name: str
    description: str
    trains: bool = True
    student_sees_skills: bool = False
    policy_loss: str = "ppo_clip"
    pg_coef: float = 1.0
    advantage_estimator: str = "grpo"
    norm_by_std: bool = True
    stats_over: Literal["episode", "step"] = "step"
    distill_loss: str = "none"
    distill_coef: float = 0.0
    distill_kwargs: dict[str, float] = {}
    token_advantage_transform: Literal["rlsd"] | None = None
    token_advantage_kwargs: dict[str, float] = {}
    entropy_coeff: float = 0.001
    kl_coef: float = 0.01
    kl_kind: str = "low_var_kl"
    agg_mode: str = "token-mean"
    invalid_action_penalty: float = 0.1
    group_size: int = 8
    lr: float = 1e-6
    per_env_overrides: dict[str, dict[str, Any]] = {}

    @computed_field  # type: ignore[prop-decorator]
    @property
    def needs_teacher(self) -> bool:
        """True when training needs teacher log-probs (a distill loss or the RLSD transform)."""
        return self.distill_loss != "none" or self.token_advantage_transform is not None

    @model_validator(mode="after")
    def _check(self) -> "Algorithm":
        _check_names(self)
        _check_numbers(self)
        _check_kwargs(self)
        return self

    def with_overrides(self, **overrides: Any) -> "Algorithm":
        """A validated copy with some fields replaced; raises ConfigError on a bad field/value."""
        unknown = set(overrides) - (set(type(self).model_fields) - _NOT_OVERRIDABLE)
        if unknown:
            valid = ", ".join(sorted(set(type(self).model_fields) - _NOT_OVERRIDABLE))
            raise ConfigError(
                f"cannot override {', '.join(sorted(unknown))} of algorithm {self.name!r}: "
                f"overridable fields are {valid}"
            )
        data = self.model_dump(exclude={"needs_teacher"}) | overrides
        try:
            return type(self).model_validate(data)
        except ValidationError as e:
            raise ConfigError(f"invalid overrides for algorithm {self.name!r}: {e}") from None

    def for_env(self, env: str) -> "Algorithm":
        """This preset with the overrides registered for environment `env` (if any) applied."""
        return self.with_overrides(**self.per_env_overrides.get(env, {}))


def get_algorithm(name: str) -> Algorithm:
    """The preset `name`, as a deep copy: its dict fields can be changed without touching the
    registered preset."""
    return ALGORITHMS.get(name).model_copy(deep=True)


def list_algorithms() -> list[str]:
    """The presets in the order of the paper's results table (baselines first, SDAR last)."""
    return ALGORITHMS.in_order()


def _check_names(algo: Algorithm) -> None:
    for field, valid in (
        ("policy_loss", list_policy_losses()),
        ("advantage_estimator", list_advantage_estimators()),
        ("distill_loss", list_distill_losses()),
        ("kl_kind", list_kl_penalties()),
        ("agg_mode", list_agg_modes()),
    ):
        value = getattr(algo, field)
        if value not in valid:
            raise ValueError(f"{field} {value!r} is unknown: valid names are {', '.join(valid)}")


def _check_numbers(algo: Algorithm) -> None:
    if algo.trains and algo.group_size < 2:
        raise ValueError(
            f"group_size must be >= 2 for group-relative advantages, got {algo.group_size}: "
            "set group_size to 8"
        )
    if algo.lr <= 0:
        raise ValueError(f"lr must be > 0, got {algo.lr}: the reference uses 1e-6")
    for field in ("pg_coef", "distill_coef", "kl_coef", "invalid_action_penalty", "entropy_coeff"):
        if getattr(algo, field) < 0:
            raise ValueError(f"{field} must be >= 0, got {getattr(algo, field)}")
    if algo.distill_loss != "none" and algo.distill_coef <= 0:
        raise ValueError(
            f"distill_coef must be > 0 when distill_loss is {algo.distill_loss!r}: "
            "set distill_coef (e.g. 0.01) or distill_loss='none'"
        )
    if algo.distill_loss == "none" and algo.distill_coef != 0:
        raise ValueError("distill_coef must be 0 when distill_loss is 'none'")


def _check_kwargs(algo: Algorithm) -> None:
    params = inspect.signature(get_distill_loss(algo.distill_loss)).parameters
    allowed = {n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    allowed.discard("agg_mode")  # comes from Algorithm.agg_mode
    bad = set(algo.distill_kwargs) - allowed
    if bad:
        raise ValueError(
            f"distill_kwargs {sorted(bad)} are not keywords of distill loss "
            f"{algo.distill_loss!r}: valid keywords are {sorted(allowed) or 'none'}"
        )
    if algo.token_advantage_transform is None and algo.token_advantage_kwargs:
        raise ValueError("token_advantage_kwargs given without token_advantage_transform='rlsd'")
    if algo.token_advantage_transform == "rlsd":
        kw = algo.token_advantage_kwargs
        if set(kw) != _RLSD_KEYS:
            raise ValueError(
                f"token_advantage_kwargs for rlsd must have exactly {sorted(_RLSD_KEYS)}, got "
                f"{sorted(kw)}: e.g. {{'lam0': 1.0, 'decay_steps': 100, 'eps': 0.2}}"
            )
        rlsd_lambda(0, lam0=kw["lam0"], decay_steps=int(kw["decay_steps"]))  # validates
        if not 0.0 <= kw["eps"] < 1.0:
            raise ValueError(f"rlsd eps must be in [0, 1), got {kw['eps']}")
    unknown = {k for o in algo.per_env_overrides.values() for k in o} - (
        set(Algorithm.model_fields) - _NOT_OVERRIDABLE
    )
    if unknown:
        raise ValueError(f"per_env_overrides name unknown fields: {sorted(unknown)}")


_SEARCH = {"search": {"kl_coef": 0.001, "invalid_action_penalty": 0.01}}
_SDAR_COEF = 0.01


def _preset(name: str, description: str, **fields: Any) -> None:
    ALGORITHMS.add(
        name, Algorithm(name=name, description=description, per_env_overrides=_SEARCH, **fields)
    )


_preset("vanilla", "The base model evaluated as is; no training.", trains=False)
_preset(
    "skill_prompt",
    "The base model with retrieved skills in the student prompt; no training.",
    trains=False,
    student_sees_skills=True,
)
_preset("grpo", "GRPO only (RL from outcome rewards).")
_preset("skill_grpo", "GRPO with retrieved skills in the student prompt.", student_sees_skills=True)
_preset(
    "opsd",
    "On-policy self-distillation only: the gated SDAR loss (beta=5) with policy-gradient weight 0.",
    pg_coef=0.0,
    distill_loss="sdar",
    distill_coef=_SDAR_COEF,
    distill_kwargs={"beta": 5.0},
)
_preset(
    "grpo_opsd",
    "GRPO plus ungated self-distillation on every token (SDAR loss with beta=0, "
    "gate = 0.5, as the authors implement it).",
    distill_loss="sdar",
    distill_coef=_SDAR_COEF,
    distill_kwargs={"beta": 0.0},
)
_preset(
    "skill_sd",
    "GRPO plus k3 KL(student||teacher) times the on-policy ratio (log-ratio clamped at 10).",
    distill_loss="skill_sd",
    distill_coef=0.001,
    distill_kwargs={"log_ratio_clip": 10.0},
)
_preset(
    "rlsd",
    "GRPO with teacher-reshaped token advantages; lambda decays linearly to 0 over 100 "
    "training iterations.",
    token_advantage_transform="rlsd",
    token_advantage_kwargs={"lam0": 0.5, "decay_steps": 100, "eps": 0.2},
)
_preset(
    "sdar",
    "GRPO plus sigmoid-gated self-distillation (beta=5).",
    distill_loss="sdar",
    distill_coef=_SDAR_COEF,
    distill_kwargs={"beta": 5.0},
)
