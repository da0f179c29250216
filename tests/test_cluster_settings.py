"""What `sdar compile` and `sdar submit` tell a user about the cluster they target: a warning when
the images point at the default registry, where none is published, and a note naming the
`kfp-launcher` providers setting when the run imports s3:// or gs:// URIs."""

import pytest
from typer.testing import CliRunner

import components.images as images
from sdar_core.cli import app


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_compile_warns_when_the_images_are_in_the_default_registry(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "REGISTRY", images.DEFAULT_REGISTRY)
    result = invoke("compile", str(tmp_path / "p.yaml"), "--algorithm", "vanilla")
    assert result.exit_code == 0, result.output
    assert "warning: the images are ghcr.io/sdar-project/sdar-cpu:" in result.stderr
    assert "SDAR_IMAGE_REGISTRY" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert (tmp_path / "p.yaml").is_file()


def test_compile_is_quiet_with_a_registry_of_your_own(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "REGISTRY", "registry.example.com/team")
    result = invoke("compile", str(tmp_path / "p.yaml"), "--algorithm", "vanilla")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("model", "data", "stores"),
    [
        ("s3://bucket/model", "s3://bucket/games", ["s3://"]),
        ("gs://bucket/model", "s3://bucket/games", ["s3://", "gs://"]),
        ("minio://mlpipeline/model", "minio://mlpipeline/games", []),
    ],
)
def test_submit_names_the_launcher_providers_setting_for_object_stores(
    tmp_path, model, data, stores
):
    missing = tmp_path / "missing.yaml"  # stops before any server is contacted
    result = invoke(
        "submit", str(missing), "--host", "http://127.0.0.1:9", "--model", model, "--data", data
    )
    assert result.exit_code != 0
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == len(stores)
    for note, prefix in zip(notes, stores, strict=True):
        assert f"imports {prefix} URIs" in note and "kfp-launcher" in note
        assert "providers" in note


def test_submit_names_the_secret_the_compiled_pipeline_reads(tmp_path):
    from pipelines import PipelineOptions, compile_pipeline

    for secret, expected in ((None, []), ("mlflow-auth", ["mlflow-auth"])):
        package = compile_pipeline(
            PipelineOptions(algorithm="vanilla", mlflow_secret=secret), tmp_path / "p.yaml"
        )
        # an unreachable host: the notes come before kfp.Client checks the server
        result = invoke("submit", str(package), "--host", "http://127.0.0.1:9")
        assert result.exit_code != 0
        notes = [line for line in result.stderr.splitlines() if "read the secret" in line]
        assert [n.split("secret '")[1].split("'")[0] for n in notes] == expected
