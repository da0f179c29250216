"""Chat templates are checked before they are trusted (sdar_core.models.templates): when
imported, when a model is loaded, and when `sdar run --model` sets up; a template that escapes
the sandbox, loops without end or fails is refused in one line naming where it came from. And
`sdar run --model` refuses a pickle-only folder at set-up, as `eval` does."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import pipelines.local
from sdar_core.cli import main
from sdar_core.errors import ArtifactError
from sdar_core.models import load_tokenizer
from sdar_core.models.importer import import_model

ESCAPE = "{{ cycler.__init__.__globals__.os.popen('id').read() }}"
HUGE_LOOP = "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"
PLAIN = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"


def _fail(argv, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return exit_info.value.code, capsys.readouterr().err


def _model_with_template(tiny_model_dir: Path, folder: Path, template: str) -> Path:
    """A copy of the tiny model whose saved chat template is `template` (and no checksums, as
    a folder from elsewhere)."""
    shutil.copytree(tiny_model_dir, folder)
    (folder / "chat_template.jinja").write_text(template)
    (folder / "checksums.json").unlink()
    return folder


def test_a_sandbox_escape_is_refused_at_import_in_one_line(tiny_model_dir, tmp_path, capsys):
    template = tmp_path / "evil.jinja"
    template.write_text(ESCAPE)
    out = tmp_path / "imported"
    argv = ["import-model", str(tiny_model_dir), str(out), "--chat-template", str(template)]
    code, err = _fail(argv, capsys)
    assert code == 2
    assert err.splitlines()[0].startswith(
        f"error: the chat template file {template} is refused: it tries to reach outside the "
        "template sandbox (access to attribute '__init__'"
    )
    assert len(err.splitlines()) == 2 and "Traceback" not in err
    assert not out.exists()


def test_a_huge_loop_is_refused_at_import(tiny_model_dir, tmp_path):
    template = tmp_path / "loop.jinja"
    template.write_text(HUGE_LOOP)
    with pytest.raises(ArtifactError, match=r"loop\.jinja is refused: rendering .* did not finish"):
        import_model(tiny_model_dir, tmp_path / "imported", chat_template=template)
    assert not (tmp_path / "imported").exists()


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("{% for m in messages %}{{ m.content }", "it is not valid Jinja: unexpected '}' (line 1)"),
        ("{{ raise_exception('no system role') }}", "fails: TemplateError: no system role"),
        ("{{ 'x' * 10000000000 }}", "needs more than 1024 MiB"),
    ],
)
def test_broken_templates_are_refused_saying_why(template, says):
    from sdar_core.models.templates import check_chat_template

    with pytest.raises(ArtifactError, match="the chat template file t.jinja is refused") as err:
        check_chat_template(template, where="the chat template file t.jinja")
    assert says in str(err.value) and "\n" not in str(err.value)


def test_a_plain_template_passes_and_is_imported(tiny_model_dir, tmp_path):
    out = import_model(tiny_model_dir, tmp_path / "imported", chat_template=PLAIN)
    assert load_tokenizer(out).chat_template == PLAIN


@pytest.mark.parametrize(("template", "says"), [(ESCAPE, "reach outside"), (HUGE_LOOP, "finish")])
def test_a_bad_template_of_a_model_is_refused_in_one_line_when_loaded(
    tiny_model_dir, tmp_path, template, says
):
    model = _model_with_template(tiny_model_dir, tmp_path / "model", template)
    with pytest.raises(ArtifactError) as err:
        load_tokenizer(model)
    message = str(err.value)
    assert message.startswith(f"the chat template of model {model} is refused: ")
    assert says in message and "\n" not in message


@pytest.fixture
def no_pipeline(monkeypatch):
    """Set-up must refuse before the pipeline is built (so no task can start)."""

    def built(options):
        raise AssertionError("set-up accepted the model folder: the pipeline was built")

    monkeypatch.setattr(pipelines.local, "build_pipeline", built)


def test_run_refuses_a_pickle_only_folder_at_set_up(tiny_model_dir, tmp_path, capsys, no_pipeline):
    folder = tmp_path / "pickled"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_model_dir / name, folder / name)
    (folder / "pytorch_model.bin").write_bytes(b"a pickle that must never be opened")
    argv = ["run", "--model", str(folder), "--env", "webshop", "--out-dir", str(tmp_path / "r")]
    code, err = _fail(argv, capsys)
    assert code == 2
    assert err.splitlines()[0] == (
        f"error: model directory {folder} holds only pickle checkpoints (pytorch_model.bin); "
        "sdar loads safetensors only because unpickling can run arbitrary code: load it once "
        "where you trust it and re-save with model.save_pretrained(dir), which writes "
        "model.safetensors"
    )


def test_run_refuses_a_model_with_a_bad_template_at_set_up(
    tiny_model_dir, tmp_path, capsys, no_pipeline
):
    model = _model_with_template(tiny_model_dir, tmp_path / "model", ESCAPE)
    argv = ["run", "--model", str(model), "--env", "webshop", "--out-dir", str(tmp_path / "r")]
    code, err = _fail(argv, capsys)
    assert code == 2
    assert err.splitlines()[0].startswith(f"error: the chat template of model {model} is refused")
