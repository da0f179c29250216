"""Skill files have a size limit, refused with the file named before any stage reads them."""

import pytest

from sdar_core.errors import ArtifactError
from sdar_core.skills import build_index
from sdar_core.skills.documents import MAX_BODY_CHARS, MAX_FILE_BYTES, load_skill

HEADER = "---\nname: big\nenvironment: alfworld\ntask_types: [general]\nsummary: s\n---\n"


def test_a_body_over_the_limit_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "big.md"
    path.write_text(HEADER + "word " * (MAX_BODY_CHARS // 5 + 1))
    with pytest.raises(ArtifactError, match=f"{path}: field 'body' has 32,00\\d characters"):
        load_skill(path)


def test_a_huge_file_is_refused_before_it_is_read(tmp_path):
    skills = tmp_path / "skills"
    skills.mkdir()
    (skills / "huge.md").write_text(HEADER + "x" * (5 * 1024 * 1024))  # the 5 MB of the issue
    with pytest.raises(ArtifactError, match="huge.md: the skill file has 5,2\\d\\d,\\d+ bytes"):
        build_index(skills, tmp_path / "index", dense=False)
    assert not (tmp_path / "index").exists()


def test_a_body_at_the_limit_loads(tmp_path):
    path = tmp_path / "ok.md"
    path.write_text(HEADER + "x" * MAX_BODY_CHARS)
    assert len(load_skill(path).body) == MAX_BODY_CHARS < MAX_FILE_BYTES
