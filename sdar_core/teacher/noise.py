"""Teacher retrieval noise: a seeded share of teacher contexts get a wrong skill.

The seed articles claim that SDAR's gate protects against the teacher's negative rejections when
skill retrieval is imperfect. To test that claim (`sdar replicate --noise 0.5`), the teacher
stage can replace the retrieved skills of a share of its contexts by wrong ones.

A teacher context is one group (skills are retrieved once per group: inputs.py). Of the groups
whose retrieval holds at least one task-specific skill, exactly round(share x n) (halves rounded
up) are picked, by a `random.Random` seeded with the seed and the groups' ids (deterministic
across processes, and different in every round, whose group ids differ); in each, every
task-specific skill is replaced by another task-specific skill of the index that the group did
not retrieve (a skill retrieved for a different task), drawn without repetition. General skills
stay: they are the same for every task, so they cannot be wrong. A library with too few skills to
draw from is refused.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

from sdar_core.errors import ConfigError

__all__ = ["add_retrieval_noise"]


def add_retrieval_noise(
    skills_by_group: Mapping[str, Sequence[Any]],
    task_skills: Sequence[Any],
    *,
    share: float,
    seed: int,
) -> tuple[dict[str, list[Any]], set[str]]:
    """(skills per group with `share` of the groups given wrong skills, the groups changed).

    `skills_by_group` holds RetrievedSkill lists (inputs.retrieve_group_skills); `task_skills`
    the index's task-specific skills (`SkillIndex.task_skills`). share 0 returns the input."""
    from sdar_core.skills.retriever import RetrievedSkill

    out = {group: list(skills) for group, skills in skills_by_group.items()}
    if share == 0:
        return out, set()
    eligible = sorted(g for g, skills in out.items() if any(_specific(s) for s in skills))
    n = math.floor(share * len(eligible) + 0.5)  # half up: one group at share 0.5 is noised
    rng = random.Random(f"{seed}:{','.join(eligible)}")
    picked = set(rng.sample(eligible, n))
    for group in sorted(picked):
        retrieved = {s.name for s in out[group] if _specific(s)}
        pool = [s for s in task_skills if s.name not in retrieved]
        if len(pool) < len(retrieved):
            raise ConfigError(
                f"skill_noise needs task-specific skills other than the retrieved ones, but the "
                f"index holds only {len(task_skills)}: use a library with more skills, or set "
                "skill_noise to 0"
            )
        wrong = iter(rng.sample(pool, len(retrieved)))
        out[group] = [
            RetrievedSkill(next(wrong), rank=s.rank, score=None) if _specific(s) else s
            for s in out[group]
        ]
    return out, picked


def _specific(skill: Any) -> bool:
    return not skill.skill.is_general
