"""Teacher retrieval noise (sdar_core.teacher.noise): exactly the asked share of teacher
contexts get wrong skills, seeded and deterministic; share 0 changes nothing."""

import pytest

from sdar_core.errors import ConfigError
from sdar_core.skills.documents import Skill
from sdar_core.skills.retriever import RetrievedSkill
from sdar_core.teacher import TeacherConfig
from sdar_core.teacher.noise import add_retrieval_noise


def _skill(name: str, general: bool = False) -> Skill:
    types = ("general",) if general else ("pick_and_place_simple",)
    return Skill(name=name, environment="alfworld", task_types=types, summary=name, body=name)


GENERAL = RetrievedSkill(_skill("general-rules", general=True), rank=None, score=None)
TASK_SKILLS = [_skill(f"object-{i}") for i in range(10)]
# 20 groups, each retrieving the general skill and its own task skill; 4 retrieving no task skill
RETRIEVED = {
    f"r0-g{g:02d}": [GENERAL, RetrievedSkill(TASK_SKILLS[g % 10], rank=0, score=1.0)]
    for g in range(20)
} | {f"r0-h{g}": [GENERAL] for g in range(4)}


@pytest.mark.parametrize("share", [0.25, 0.5, 1.0])
def test_the_asked_share_of_contexts_gets_a_wrong_skill(share):
    noisy, picked = add_retrieval_noise(RETRIEVED, TASK_SKILLS, share=share, seed=3)
    changed = {g for g in RETRIEVED if [s.name for s in noisy[g]] != [s.name for s in RETRIEVED[g]]}
    assert changed == picked and len(picked) == round(share * 20)  # of the 20 eligible groups
    for group in picked:
        general, wrong = noisy[group]
        assert general is GENERAL  # general skills stay
        assert wrong.name != RETRIEVED[group][1].name and wrong.skill in TASK_SKILLS
        assert wrong.rank == 0 and wrong.score is None
    assert not any(g.startswith("r0-h") for g in picked)  # nothing to replace there


def test_noise_is_seeded_and_zero_changes_nothing():
    first = add_retrieval_noise(RETRIEVED, TASK_SKILLS, share=0.5, seed=3)
    assert add_retrieval_noise(RETRIEVED, TASK_SKILLS, share=0.5, seed=3) == first
    other = add_retrieval_noise(RETRIEVED, TASK_SKILLS, share=0.5, seed=4)
    assert other[1] != first[1]  # another seed picks other groups (C(20, 10) choices)
    same, picked = add_retrieval_noise(RETRIEVED, TASK_SKILLS, share=0.0, seed=3)
    assert same == RETRIEVED and picked == set()


def test_a_half_rounds_up():
    one = {"r0-g0": RETRIEVED["r0-g00"]}
    assert add_retrieval_noise(one, TASK_SKILLS, share=0.5, seed=0)[1] == {"r0-g0"}
    three = {g: RETRIEVED[g] for g in ("r0-g00", "r0-g01", "r0-g02")}
    assert len(add_retrieval_noise(three, TASK_SKILLS, share=0.5, seed=0)[1]) == 2


def test_noise_needs_other_skills_and_a_share_in_range():
    with pytest.raises(ConfigError, match="other than the retrieved ones"):
        add_retrieval_noise(RETRIEVED, TASK_SKILLS[:1], share=0.5, seed=0)
    with pytest.raises(ValueError, match="skill_noise must be in"):
        TeacherConfig(skill_noise=1.5)
