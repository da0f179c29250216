"""Every image the components name has a Dockerfile whose tag matches, pinned and non-root."""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

from components.images import IMAGE_TAGS, REGISTRY  # noqa: E402
from pipelines import PipelineOptions, compile_pipeline  # noqa: E402


def images_named(tmp_path: Path) -> set[str]:
    """Images of every executor, over both profiles and a warm-started, teacher-using graph."""
    found = set()
    for profile in ("cluster", "local"):
        path = compile_pipeline(
            PipelineOptions(algorithm="sdar", rounds=1, warm_start=True, profile=profile),
            tmp_path / f"{profile}.yaml",
        )
        spec = next(yaml.safe_load_all(path.read_text()))
        found |= {
            ex["container"]["image"]
            for ex in spec["deploymentSpec"]["executors"].values()
            if "container" in ex
        }
    return found


def test_every_component_image_has_a_dockerfile_with_the_same_tag(tmp_path):
    named = images_named(tmp_path)
    assert len(named) == 2  # the CPU and the GPU image, nothing else
    for ref in named:
        match = re.fullmatch(rf"{re.escape(REGISTRY)}/(?P<name>[a-z0-9-]+):(?P<tag>[^:/]+)", ref)
        assert match, ref
        name, tag = match["name"], match["tag"]
        assert IMAGE_TAGS[name] == tag
        assert tag != "latest" and re.fullmatch(r"\d+\.\d+\.\d+", tag)
        dockerfile = (ROOT / "images" / name / "Dockerfile").read_text()
        assert re.search(rf"^ARG SDAR_IMAGE_TAG={re.escape(tag)}$", dockerfile, re.M), name


@pytest.mark.parametrize("name", sorted(IMAGE_TAGS))
def test_dockerfile_is_pinned_and_runs_as_non_root(name):
    text = (ROOT / "images" / name / "Dockerfile").read_text()
    bases = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert bases
    for base in bases:
        assert ":" in base and not base.endswith(":latest"), base
        assert re.search(r":\d+\.\d+", base), f"{base} is not pinned to a version"
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    lock = "constraints-gpu.txt" if name == "sdar-gpu" else "constraints.txt"
    assert f"-c {lock}" in text  # the project is installed with its lock
    assert re.search(r"pip install[^\n]*\.(\[gpu\])?\"?\s*$", text, re.M)


def test_gpu_image_has_cuda_and_the_gpu_extra():
    text = (ROOT / "images" / "sdar-gpu" / "Dockerfile").read_text()
    # torch 2.14.0 of the GPU lock is built for CUDA 13.0; DeepSpeed needs nvcc of the same CUDA
    assert re.search(r"^FROM nvidia/cuda:13\.0\.\d+-cudnn-devel-ubuntu22\.04$", text, re.M)
    assert '".[gpu]"' in text
