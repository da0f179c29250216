"""The two locks and the library's ranges: constraints.txt (CPU, what `make install` and CI
install) and constraints-gpu.txt (the GPU image, `make lock-gpu`) each pin a version inside every
range pyproject.toml declares, the GPU lock holds the `gpu` extra (vLLM) and the image installs
with it; and the transformers stack this interpreter imports is the pinned one of the lock named by
$SDAR_LOCK_FILE (CI's second pass, `make test-gpu-lock`, imports the GPU lock's)."""

import os
import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def pins(lock: str) -> dict[str, str]:
    """{normalized name: version} of a lock file's `name==version` lines."""
    found = {}
    for line in (ROOT / lock).read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, pinned = line.partition("==")
        assert sep and re.fullmatch(r"[\w.+!-]+", pinned), f"{lock}: {line!r} is not name==version"
        found[canonicalize_name(name)] = pinned
    return found


def requirements(*extras: str) -> list[Requirement]:
    """The project's dependencies and those of `extras`."""
    lines = PYPROJECT["dependencies"] + [
        r for extra in extras for r in PYPROJECT["optional-dependencies"][extra]
    ]
    return [Requirement(line) for line in lines]


def unsatisfied(lock: str, reqs: list[Requirement]) -> list[str]:
    locked = pins(lock)
    bad = []
    for req in reqs:
        pinned = locked.get(canonicalize_name(req.name))
        if pinned is None or not req.specifier.contains(pinned, prereleases=True):
            bad.append(f"{req} (locked: {pinned})")
    return bad


def test_every_direct_dependency_is_a_range_not_a_pin():
    for req in requirements("gpu", "dev", "smollm2"):
        assert not any(spec.operator == "==" for spec in req.specifier), str(req)
        assert req.specifier, f"{req.name} has no range"


def test_the_cpu_lock_satisfies_the_ranges_and_takes_the_cpu_torch():
    assert unsatisfied("constraints.txt", requirements("dev", "smollm2")) == []
    cpu = pins("constraints.txt")
    assert cpu["torch"] == "2.13.0"  # the CPU wheel on disk (DESIGN.md section 4)
    assert "vllm" not in cpu


def test_the_gpu_lock_satisfies_the_ranges_and_the_gpu_extra():
    assert unsatisfied("constraints-gpu.txt", requirements("gpu")) == []
    gpu = pins("constraints-gpu.txt")
    # vLLM 0.33.0's own pins (DESIGN.md section 4)
    assert gpu["vllm"] == "0.33.0"
    assert gpu["torch"] == "2.14.0"
    assert Requirement("transformers<5.21").specifier.contains(gpu["transformers"])
    assert Requirement("certifi>=2026.10.19").specifier.contains(gpu["certifi"])


def test_the_locks_differ_only_where_vllm_needs_it():
    """Everything both locks hold is at one version except what scripts/lock_gpu.py frees."""
    cpu, gpu = pins("constraints.txt"), pins("constraints-gpu.txt")
    differ = sorted(name for name in cpu.keys() & gpu.keys() if cpu[name] != gpu[name])
    assert differ == ["fastapi", "numpy", "torch", "transformers"]


def test_the_gpu_image_installs_with_the_gpu_lock():
    dockerfile = (ROOT / "images" / "sdar-gpu" / "Dockerfile").read_text()
    assert "COPY pyproject.toml constraints-gpu.txt" in dockerfile
    assert re.search(r'pip install[^\n]*-c constraints-gpu\.txt[^\n]*"\.\[gpu\]"', dockerfile)
    assert "constraints.txt" not in dockerfile.replace("constraints-gpu.txt", "")


@pytest.mark.parametrize("package", ["transformers", "tokenizers", "huggingface_hub"])
def test_the_imported_transformers_stack_is_the_locks(package):
    lock = os.environ.get("SDAR_LOCK_FILE", "constraints.txt")
    assert version(package) == pins(lock)[canonicalize_name(package)], (
        f"{package} {version(package)} is imported, {lock} pins "
        f"{pins(lock)[canonicalize_name(package)]}"
    )
