"""Write constraints-gpu.txt, the GPU image's lock, with pip's resolver (`make lock-gpu`).

The project declares ranges (pyproject.toml); each lock pins one resolution of them. The GPU lock
is the project with its `gpu` extra (vLLM) resolved for the image's platform, Linux x86_64 and
Python 3.11, so it must be produced there. Every package stays at its CPU lock version
(constraints.txt) except those vLLM pins differently (FREE below): the two locks then differ only
where they must, and the CPU suite covers the rest of the GPU image's versions too.

pip resolves with `install --dry-run --ignore-installed --report`: nothing is installed, but pip
downloads each wheel it needs to read metadata from when the index serves none separately.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CPU_LOCK = ROOT / "constraints.txt"
GPU_LOCK = ROOT / "constraints-gpu.txt"
# vLLM 0.33.0 pins torch 2.14.0 (CUDA 13 wheels), transformers < 5.21, fastapi < 0.137 and a
# numpy that the CPU lock's 2.4.6 is not: these follow vLLM; everything else follows the CPU lock.
FREE = ("torch", "transformers", "fastapi", "numpy")
HEADER = """\
# GPU lock: the project with its `gpu` extra (vLLM) for Linux x86_64, Python 3.11, written by
# `make lock-gpu` (scripts/lock_gpu.py) with pip's resolver. Packages constraints.txt also
# pins are at its versions, except {free}. Do not edit by hand.
"""


def _name(line: str) -> str:
    """The normalized project name of a `name==version` line (PEP 503)."""
    return re.sub(r"[-_.]+", "-", line.split("==", 1)[0]).lower()


def _seed(path: Path) -> None:
    """Write the CPU lock less the FREE packages to `path` (the resolver's constraints)."""
    lines = [
        line
        for line in CPU_LOCK.read_text().splitlines()
        if line and not line.startswith("#") and _name(line) not in FREE
    ]
    path.write_text("\n".join(lines) + "\n")


def _resolve(constraints: Path, report: Path) -> list[tuple[str, str]]:
    """(name, version) of everything pip would install for `.[gpu]` under `constraints`."""
    cmd = [
        sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
        "--report", str(report), "-c", str(constraints), f"{ROOT}[gpu]",
    ]  # fmt: skip
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    installs = json.loads(report.read_text())["install"]
    pins = [(i["metadata"]["name"], i["metadata"]["version"]) for i in installs]
    return [(name, version) for name, version in pins if _name(name) != "sdar"]


def main() -> int:
    if sys.platform != "linux" or platform.machine() != "x86_64" or sys.version_info[:2] != (3, 11):
        print(
            f"error: the GPU lock is resolved for Linux x86_64 / Python 3.11, this is "
            f"{sys.platform} {platform.machine()} / Python {platform.python_version()}: run "
            "`make lock-gpu` there (e.g. in a python:3.11 container)",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        seed, report = Path(tmp) / "seed.txt", Path(tmp) / "report.json"
        _seed(seed)
        pins = _resolve(seed, report)
    body = "".join(
        f"{name}=={version}\n" for name, version in sorted(pins, key=lambda p: _name(p[0]))
    )
    # temp file, then rename: an interrupted lock never looks complete
    fd, tmp_lock = tempfile.mkstemp(prefix=".constraints-gpu.", dir=ROOT)
    with os.fdopen(fd, "w") as out:
        out.write(HEADER.format(free=", ".join(FREE)) + body)
    os.chmod(tmp_lock, 0o644)
    os.replace(tmp_lock, GPU_LOCK)
    print(f"wrote {GPU_LOCK.name}: {len(pins)} packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
