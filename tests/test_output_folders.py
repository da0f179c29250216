"""Commands that replace an output folder replace only what they wrote themselves."""

import json

import pytest

from sdar_core.cli import main
from sdar_core.envs.alfworld import generate_games
from sdar_core.errors import ArtifactError
from sdar_core.skills import build_index, bundled_skills_dir, load_index
from sdar_core.skills.index import MANIFEST, is_skill_index

# what `sdar gen-games` writes at the top of its folder (before it recorded a kind)
GAMES_MANIFEST = {"generator_version": "1", "seed": 0, "counts": {"train": 1}, "games": {}}


@pytest.fixture
def games_like(tmp_path):
    folder = tmp_path / "games"
    (folder / "train" / "game-1").mkdir(parents=True)
    (folder / "train" / "game-1" / "game.tw-pddl").write_text("{}")
    (folder / "manifest.json").write_text(json.dumps(GAMES_MANIFEST))
    return folder


def test_index_skills_refuses_a_games_folder(games_like, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["index-skills", str(bundled_skills_dir("alfworld")), str(games_like), "--no-dense"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert f"{games_like} is not empty and is not a skill index" in err
    assert (games_like / "train" / "game-1" / "game.tw-pddl").is_file()
    assert json.loads((games_like / "manifest.json").read_text()) == GAMES_MANIFEST


def test_index_skills_refuses_a_folder_with_another_kind_of_manifest(tmp_path):
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / MANIFEST).write_text(json.dumps({"kind": "something_else", "files": {}}))
    with pytest.raises(ArtifactError, match="is not a skill index written by"):
        build_index(bundled_skills_dir("alfworld"), folder, dense=False)
    assert json.loads((folder / MANIFEST).read_text())["kind"] == "something_else"


def test_index_skills_replaces_its_own_index(tmp_path):
    out = build_index(bundled_skills_dir("alfworld"), tmp_path / "index", dense=False)
    assert json.loads((out / MANIFEST).read_text())["kind"] == "skill_index"
    assert is_skill_index(out)
    build_index(bundled_skills_dir("alfworld"), out, dense=False, card_weight=1)
    assert load_index(out).config.card_weight == 1


def test_gen_games_overwrite_never_deletes_a_foreign_folder(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep")
    with pytest.raises(ArtifactError, match="--overwrite replaces only a games folder"):
        generate_games(folder, n_train=1, n_valid_seen=0, n_valid_unseen=0, overwrite=True)
    assert (folder / "notes.txt").read_text() == "keep"


def test_gen_games_names_the_flag_for_its_own_folder(games_like):
    with pytest.raises(ArtifactError, match=f"{games_like} already holds a games folder: pass "):
        generate_games(games_like, n_train=1, n_valid_seen=0, n_valid_unseen=0)


def test_the_embedded_run_never_deletes_a_model_folder_it_did_not_write(tmp_path):
    from sdar_core.run.prepare import _model

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights-i-trained.safetensors").write_bytes(b"x")
    with pytest.raises(ArtifactError, match="it exists and is not an empty directory"):
        _model(tmp_path)
    assert (tmp_path / "model" / "weights-i-trained.safetensors").is_file()


@pytest.mark.parametrize("key", ["files", "skill_checksums", "skill_names"])
def test_an_index_manifest_without_its_tables_is_a_clear_error(tmp_path, key):
    out = build_index(bundled_skills_dir("alfworld"), tmp_path / "index", dense=False)
    manifest = json.loads((out / MANIFEST).read_text())
    del manifest[key]
    (out / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=f"lacks '{key}'.*rebuild it with `sdar index-skills"):
        load_index(out)
