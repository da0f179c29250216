"""Teacher scoring: with no skills teacher == student; the teacher scores exactly the student's
response tokens, at the right positions; group members share skills; algorithms without a teacher
skip cleanly; an index for other skills or an artifact of another schema version is refused."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from sdar_core.errors import ArtifactError
from sdar_core.models import load_model, load_tokenizer
from sdar_core.rollout import RolloutConfig, generate_rollouts, read_trajectories
from sdar_core.rollout.schema import METADATA_FILE
from sdar_core.skills import build_index, bundled_skills_dir, load_index
from sdar_core.teacher import (
    TeacherConfig,
    build_items,
    pack_by_tokens,
    retrieve_group_skills,
    score_teacher,
)

QUIET = dict(show_progress=False)
NO_SKILLS = TeacherConfig(skills_k=0, include_general=False, **QUIET)


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    return build_index(
        bundled_skills_dir("alfworld"), tmp_path_factory.mktemp("idx") / "index", dense=False
    )


@pytest.fixture(scope="module")
def rollouts(tiny_model_dir, alfworld_games_dir, tmp_path_factory):
    """A per-step (full-chat) and a whole-trajectory artifact of the same round."""
    root = tmp_path_factory.mktemp("teacher_rollouts")
    base = dict(n_tasks=2, group_size=2, max_steps=2, max_new_tokens=12, prompt_mode="full_chat")
    for layout in ("per_step", "whole_trajectory"):
        config = RolloutConfig(**base, layout=layout, temperature=0.9, **QUIET)
        generate_rollouts(tiny_model_dir, alfworld_games_dir, root / layout, config)
    return root


@pytest.mark.parametrize("layout", ["per_step", "whole_trajectory"])
def test_without_skills_teacher_equals_student(
    tiny_model_dir, rollouts, index_dir, tmp_path, layout
):
    out = tmp_path / "scored"
    summary = score_teacher(tiny_model_dir, rollouts / layout, index_dir, out, NO_SKILLS)
    ds = read_trajectories(out, require_teacher=True)
    assert summary["teacher_mean_skill_tokens"] == 0 and not any(ds["teacher_skill_tokens"])
    for row in ds:
        teacher, student = torch.tensor(row["teacher_logprobs"]), torch.tensor(row["old_logprobs"])
        torch.testing.assert_close(teacher, student, rtol=1e-4, atol=1e-5)
        pairs = zip(row["teacher_logprobs"], row["response_mask"], strict=True)
        assert all(t == 0.0 for t, m in pairs if not m)


def test_teacher_scores_the_students_tokens_with_skills(tiny_model_dir, rollouts, index_dir):
    tokenizer = load_tokenizer(tiny_model_dir)
    rows = read_trajectories(rollouts / "per_step")
    config = TeacherConfig(skills_k=1, **QUIET)
    skills = retrieve_group_skills(load_index(index_dir), rows, config, tokenizer)
    items = build_items(rows, skills, tokenizer, max_prompt_tokens=config.max_prompt_tokens)
    for item, row in zip(items, rows, strict=True):
        assert item.input_ids[item.response_start :] == row["response_ids"]
        assert item.n_skill_tokens > 0 and item.skills_used
        # the skills only lengthen the prompt: it still ends like the student's prompt
        assert item.response_start > len(row["prompt_ids"])
        assert (
            item.input_ids[item.response_start - 3 : item.response_start] == row["prompt_ids"][-3:]
        )


def test_scored_artifact_matches_a_naive_reference(tiny_model_dir, rollouts, index_dir, tmp_path):
    config = TeacherConfig(skills_k=1, batch_tokens=4096, **QUIET)
    score_teacher(tiny_model_dir, rollouts / "per_step", index_dir, tmp_path / "s", config)
    ds = read_trajectories(tmp_path / "s", require_teacher=True)
    tokenizer = load_tokenizer(tiny_model_dir)
    rows = read_trajectories(rollouts / "per_step")
    skills = retrieve_group_skills(load_index(index_dir), rows, config, tokenizer)
    items = build_items(rows, skills, tokenizer, max_prompt_tokens=config.max_prompt_tokens)
    model = load_model(tiny_model_dir, dtype="float32")
    for item, row in zip(items, ds, strict=True):
        ids = torch.tensor([item.input_ids])
        with torch.no_grad():  # naive reference: full logits, log-softmax, gather
            logits = model(input_ids=ids).logits[0].float() / 0.9  # (T, V)
        start = item.response_start
        expected = logits.log_softmax(-1)[start - 1 : -1].gather(-1, ids[0, start:, None])
        got = torch.tensor(row["teacher_logprobs"])
        torch.testing.assert_close(got, expected.squeeze(-1), rtol=1e-5, atol=1e-5)
    by_group: dict[str, set] = {}
    for group, used in zip(ds["group_id"], ds["teacher_skills"], strict=True):
        by_group.setdefault(group, set()).add(used)
    assert all(len(v) == 1 for v in by_group.values())  # one retrieval per group
    assert all(json.loads(next(iter(v))) for v in by_group.values())


def test_algorithm_without_teacher_skips(tiny_model_dir, rollouts, tmp_path):
    summary = score_teacher(
        tiny_model_dir, rollouts / "per_step", None, tmp_path / "s", NO_SKILLS, algorithm="grpo"
    )
    assert summary["teacher_skipped"] is True
    copied = read_trajectories(tmp_path / "s")
    assert "teacher_logprobs" not in copied.column_names
    assert copied["response_ids"] == read_trajectories(rollouts / "per_step")["response_ids"]


def test_index_for_other_skills_is_refused(tiny_model_dir, rollouts, index_dir, tmp_path):
    other = tmp_path / "skills"
    other.mkdir()
    (other / "shop.md").write_text(
        "---\nname: shop-search\nenvironment: webshop\ntask_types: [search]\n"
        "summary: Search first.\n---\n# Search\nSearch before clicking.\n"
    )
    other_index = build_index(other, tmp_path / "other_index", dense=False)
    with pytest.raises(ArtifactError, match="webshop"):
        score_teacher(tiny_model_dir, rollouts / "per_step", other_index, tmp_path / "o", NO_SKILLS)
    stale = TeacherConfig(skills_dir=other, **QUIET)
    with pytest.raises(ArtifactError, match="out of date"):
        score_teacher(tiny_model_dir, rollouts / "per_step", index_dir, tmp_path / "o", stale)
    assert not (tmp_path / "o").exists()


def test_other_schema_version_or_missing_model_is_refused(
    tiny_model_dir, rollouts, index_dir, tmp_path
):
    copy = tmp_path / "copy"
    shutil.copytree(rollouts / "per_step", copy)
    with pytest.raises(ArtifactError, match="does not exist"):
        score_teacher(tmp_path / "nope", copy, index_dir, tmp_path / "o", NO_SKILLS)
    meta = json.loads((copy / METADATA_FILE).read_text())
    (copy / METADATA_FILE).write_text(json.dumps(meta | {"schema_version": 0}))
    with pytest.raises(ArtifactError, match="schema version"):
        score_teacher(tiny_model_dir, copy, index_dir, tmp_path / "o", NO_SKILLS)


def test_packing_sorts_by_length_within_the_budget():
    lengths = [5, 50, 7, 20, 20, 3, 200]
    batches = pack_by_tokens(lengths, batch_tokens=60)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(flat)
    for batch in batches:
        assert len(batch) == 1 or max(lengths[i] for i in batch) * len(batch) <= 60
    assert [6] in batches  # longer than the budget: alone


@pytest.mark.parametrize("budget", [4096, 1800])
def test_items_built_once_per_group_equal_the_builder_for_every_row(
    tiny_model_dir, rollouts, index_dir, budget
):
    """build_items tokenizes the skills once per group; every row must still be exactly what
    the skill builder gives for it, also when the prompt budget makes the builder drop skills."""
    from sdar_core.teacher.inputs import _built_item

    tokenizer = load_tokenizer(tiny_model_dir)
    config = TeacherConfig(skills_k=2, **QUIET)
    for layout in ("per_step", "whole_trajectory"):
        rows = read_trajectories(rollouts / layout)
        skills = retrieve_group_skills(load_index(index_dir), rows, config, tokenizer)
        items = build_items(rows, skills, tokenizer, max_prompt_tokens=budget)
        for row, item in enumerate(items):
            messages = json.loads(rows[row]["prompt_messages"])
            expected = _built_item(
                row,
                messages,
                rows[row]["prompt_ids"],
                rows[row]["response_ids"],
                skills[rows[row]["group_id"]],
                tokenizer,
                budget,
            )
            assert item == expected
        counts = [len(i.skills_used) for i in items]  # general + 2 retrieved skills
        if budget == 4096:
            assert set(counts) == {3}
        else:  # the builder dropped skills to fit, but not all of them
            assert min(counts) < 3 and max(counts) > 0


def test_skill_noise_gives_the_asked_share_of_groups_other_skills(
    tiny_model_dir, rollouts, index_dir, tmp_path
):
    runs = {}
    for noise in (0.0, 0.5):
        config = TeacherConfig(skills_k=1, skill_noise=noise, seed=1, **QUIET)
        out = tmp_path / f"noise{noise}"
        summary = score_teacher(tiny_model_dir, rollouts / "per_step", index_dir, out, config)
        ds = read_trajectories(out, require_teacher=True)
        runs[noise] = (summary, dict(zip(ds["group_id"], ds["teacher_skills"], strict=False)))
    (clean, clean_skills), (noisy, noisy_skills) = runs[0.0], runs[0.5]
    changed = [g for g in clean_skills if clean_skills[g] != noisy_skills[g]]
    assert len(clean_skills) == 2 and len(changed) == 1  # round(0.5 x 2 groups)
    assert clean["teacher_noisy_context_share"] == 0.0
    assert noisy["teacher_noisy_context_share"] == 0.5
