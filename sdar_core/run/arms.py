"""The arms of `sdar replicate`: the preset each arm trains, its settings and its label.

An arm is one training preset plus at most two settings that the paper's comparisons vary:
- the distillation coefficient (`UpdateConfig.distill_coef`; the presets use the authors' 0.01,
  at which the term is about 1% of the gradient), for the coefficient-sensitivity arms
  `sdar@0.1`;
- the teacher's retrieval noise (`TeacherConfig.skill_noise`: that share of the teacher's
  contexts get a wrong skill), for the arms that test the gate's claim, `sdar+noise0.5` and
  `grpo_opsd+noise0.5`.

The default arms are the paper's comparison, GRPO vs GRPO+OPSD (`grpo_opsd`, ungated) vs SDAR,
plus pure OPSD (`opsd`: distillation only, policy-gradient weight 0) as a fourth arm. GRPO comes
first: it is the baseline of the paired differences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdar_core.errors import ConfigError
from sdar_core.run.config import RunConfig

__all__ = ["BASELINE", "DEFAULT_ALGORITHMS", "DISPLAY_NAMES", "NOISE_ALGORITHMS", "Arm", "arms_for"]

DEFAULT_ALGORITHMS = ("grpo", "grpo_opsd", "sdar", "opsd")
BASELINE = "grpo"
# the algorithms a --noise option runs again with a noisy teacher (the gated and the ungated
# distillation: does the gate protect against wrong skills?)
NOISE_ALGORITHMS = ("sdar", "grpo_opsd")
# how the paper names the presets (DESIGN.md §1)
DISPLAY_NAMES = {
    "vanilla": "Vanilla",
    "skill_prompt": "Skill-Prompt",
    "grpo": "GRPO",
    "skill_grpo": "Skill-GRPO",
    "opsd": "OPSD",
    "grpo_opsd": "GRPO+OPSD",
    "skill_sd": "Skill-SD",
    "rlsd": "RLSD",
    "sdar": "SDAR",
}


@dataclass(frozen=True)
class Arm:
    """One arm: a preset, optionally another distillation coefficient or a noisy teacher."""

    algorithm: str
    distill_coef: float | None = None  # None: the preset's
    skill_noise: float = 0.0

    @property
    def label(self) -> str:
        """`sdar`, `sdar@0.1`, `sdar+noise0.5`: the arm's name in tables, files and MLflow."""
        label = self.algorithm
        if self.distill_coef is not None:
            label += f"@{self.distill_coef:g}"
        if self.skill_noise:
            label += f"+noise{self.skill_noise:g}"
        return label

    @property
    def display(self) -> str:
        """`GRPO+OPSD`, `SDAR, coef 0.1`, `SDAR, retrieval noise 0.5`: for readers."""
        words = [DISPLAY_NAMES.get(self.algorithm, self.algorithm)]
        if self.distill_coef is not None:
            words.append(f"coef {self.distill_coef:g}")
        if self.skill_noise:
            words.append(f"retrieval noise {self.skill_noise:g}")
        return ", ".join(words)

    def run_config(self, base: RunConfig, *, model: str | Path, seed: int) -> RunConfig:
        """`base` training this arm from `model` (warm start off), seeded with `seed`."""
        fields: dict[str, Any] = base.model_dump() | {
            "algorithm": self.algorithm, "model": str(model), "warm_start": False,
        }  # fmt: skip
        if self.distill_coef is not None:
            fields["update"] = fields["update"] | {"distill_coef": self.distill_coef}
        if self.skill_noise:
            fields["teacher"] = fields["teacher"] | {"skill_noise": self.skill_noise}
        return RunConfig.model_validate(fields).with_seed(seed)


def arms_for(
    algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
    *,
    sdar_coefs: Sequence[float] = (),
    noise: float | None = None,
) -> list[Arm]:
    """The arms: one per algorithm (preset settings), then SDAR at each coefficient of
    `sdar_coefs` that differs from its preset's, then SDAR and GRPO+OPSD (those of
    `algorithms`) with a teacher whose retrieval noise is `noise`."""
    from sdar_core.algos import get_algorithm

    if not algorithms or len(set(algorithms)) != len(algorithms):
        raise ConfigError(f"algorithms must be distinct and at least one, got {list(algorithms)}")
    for name in algorithms:
        if not get_algorithm(name).trains:
            raise ConfigError(f"{name} does not train: replicate compares training algorithms")
    arms = [Arm(name) for name in algorithms]
    preset_coef = get_algorithm("sdar").distill_coef
    for coef in dict.fromkeys(sdar_coefs):
        if not coef > 0:
            raise ConfigError(f"--sdar-coefs must be > 0, got {coef}: e.g. 0.01,0.1")
        if coef != preset_coef:
            arms.append(Arm("sdar", distill_coef=coef))
    if noise is not None and noise != 0:
        if not 0 < noise <= 1:
            raise ConfigError(f"--noise must be in (0, 1], got {noise}: e.g. 0.5")
        noisy = [name for name in NOISE_ALGORITHMS if name in algorithms]
        if not noisy:
            raise ConfigError(
                f"--noise runs {' and '.join(NOISE_ALGORITHMS)} with a noisy teacher: keep at "
                "least one of them in --algorithms"
            )
        arms += [Arm(name, skill_noise=noise) for name in noisy]
    return arms
