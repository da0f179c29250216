"""The CLI prints the user's errors as one short message with exit code 2; --debug re-raises."""

import pytest
from pydantic import ValidationError

from sdar_core.cli import main


def _fail(argv, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return exit_info.value.code, capsys.readouterr().err


def test_rounds_0_with_a_training_algorithm_fails_before_set_up(tmp_path, capsys):
    code, err = _fail(["run", "--out-dir", str(tmp_path / "run"), "--rounds", "0"], capsys)
    assert code == 2
    assert "rounds must be >= 1" in err and "set rounds to 2" in err
    assert "Traceback" not in err and len(err.splitlines()) == 2
    assert not (tmp_path / "run").exists()  # nothing was set up


def test_a_broken_config_file_is_named(tmp_path, capsys):
    bad = tmp_path / "run.json"
    bad.write_text('{"rounds": 2,')
    code, err = _fail(["run", "--config", str(bad)], capsys)
    assert code == 2
    assert f"the config file {bad} is not valid JSON" in err


def test_a_config_file_that_is_not_an_object_is_named(tmp_path, capsys):
    bad = tmp_path / "run.json"
    bad.write_text("[1, 2]")
    code, err = _fail(["run", "--config", str(bad)], capsys)
    assert code == 2 and f"the config file {bad} holds a JSON list" in err


def test_a_validation_error_is_one_line_per_field(capsys):
    code, err = _fail(["run", "--algorithm", "nope"], capsys)
    assert code == 2
    first = err.splitlines()[0]
    assert first.startswith("error: invalid RunConfig: ") and "valid names are" in first
    assert "errors.pydantic.dev" not in err and "input_value" not in err


def test_debug_shows_the_traceback(capsys):
    with pytest.raises(ValidationError, match="rounds must be >= 1"):
        main(["--debug", "run", "--rounds", "0"])


def test_balanced_kinds_reaches_the_run_config_and_is_refused_outside_the_miniature(
    tmp_path, capsys
):
    argv = ["run", "--out-dir", str(tmp_path / "run"), "--world", "alfworld", "--balanced-kinds"]
    code, err = _fail(argv, capsys)
    assert code == 2 and "balanced_kinds applies to generated games of world 'miniature'" in err
    assert not (tmp_path / "run").exists()
