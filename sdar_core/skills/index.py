"""The skill index: build it from a folder of skills, persist it, load it back.

An index is one directory::

    manifest.json      format_version, settings, per-skill sha256 of the source files, and the
                       sha256 of every other file in the directory
    skills.json        the parsed skills (so retrieval does not need the source folder)
    bm25/              the bm25s sparse index over each skill's card (weighted) and body
    embeddings.npy     optional: normalised dense embeddings of the skill cards, (n_skills, dim)

It is written to a temporary sibling directory and renamed into place, so a crash never leaves a
half-written index behind. Loading checks the format version and the file checksums, and when
given the skills folder, that the folder still holds exactly the files the index was built from;
any mismatch raises ArtifactError telling the user to rebuild with `sdar index-skills`.

Departure from the reference: the reference has no index; it maps task types to files through a
keyword table (see `evaluation.keyword_table_retrieve`, kept as the baseline).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from sdar_core.errors import ArtifactError
from sdar_core.limits import Count
from sdar_core.outputs import check_output_dir, manifest_of
from sdar_core.skills import dense as dense_embeddings
from sdar_core.skills.documents import Skill, load_skills, skill_checksums, skill_files
from sdar_core.skills.text import skill_card, sparse_document

FORMAT_VERSION = 1
KIND = "skill_index"  # the manifest's marker: only a folder carrying it is ever replaced
MANIFEST = "manifest.json"
SKILLS_FILE = "skills.json"
BM25_DIR = "bm25"
EMBEDDINGS_FILE = "embeddings.npy"
REBUILD_HINT = "rebuild it with `sdar index-skills SKILLS_DIR OUT_DIR`"
# what a manifest must hold, and of which type (read_manifest checks it before anything reads it)
_MANIFEST_KEYS = {
    "files": dict,
    "skill_checksums": dict,
    "settings": dict,
    "skill_names": list,
    "embedding_dim": (int, type(None)),
}


class IndexConfig(BaseModel):
    """Settings of a skill index; stored in its manifest.

    Defaults were chosen on the ALFWorld query sets of `benchmarks/retrieval.py` (numbers there):
    BM25 over the skill cards alone beats cards + bodies (bodies name the same objects and
    receptacles across task types), and MiniLM alone ranks these short task sentences poorly, so
    its rank enters the fusion with weight 0.25: it breaks BM25 ties and rescues queries that
    share no word with any card, without overturning a clear BM25 match.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    library: str | None = Field(
        default=None,
        description="bundled skill library to index (sdar_core/skills/library/<name>); None: "
        "the env's own",
    )
    dense: bool = True
    dense_model: str = dense_embeddings.DEFAULT_DENSE_MODEL
    dense_weight: float = 0.25
    fusion_k: Count = 60
    card_weight: Count = 3
    index_body: bool = False
    bm25_k1: float = 1.5
    bm25_b: float = 0.75

    @field_validator("fusion_k", "card_weight")
    @classmethod
    def _check_positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be >= 1: use 60 for fusion_k and 3 for card_weight")
        return value

    @field_validator("dense_weight")
    @classmethod
    def _check_weight(cls, value: float) -> float:
        if value <= 0.0:
            raise ValueError("must be > 0: set dense_weight to 0.25 (or dense=False for none)")
        return value

    @field_validator("bm25_b")
    @classmethod
    def _check_b(cls, value: float) -> float:
        if not 0.0 <= value <= 1.0:
            raise ValueError("must be in [0, 1]: set bm25_b to 0.75")
        return value


def build_index(
    skills_dir: str | Path, out_dir: str | Path, config: IndexConfig | None = None, **overrides
) -> Path:
    """Index every skill under `skills_dir` into the directory `out_dir` (an index there is
    replaced; any other non-empty folder is refused, see `sdar_core.outputs`).

    Settings come from `config`, or from keyword overrides of the defaults
    (e.g. `build_index(src, out, dense=False)`).
    """
    config = _resolve_config(config, overrides)
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    skills = load_skills(skills_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        _write_index(tmp, skills, config, checksums=skill_checksums(skills_dir))
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def build_index_from_skills(skills: list[Skill], out_dir: str | Path, config: IndexConfig) -> Path:
    """Index in-memory skills (no source folder; used by benchmarks with synthetic skills)."""
    checksums = {s.name: hashlib.sha256(s.to_markdown().encode()).hexdigest() for s in skills}
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        _write_index(tmp, skills, config, checksums=checksums)
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _resolve_config(config: IndexConfig | None, overrides: dict) -> IndexConfig:
    if config is not None and overrides:
        raise TypeError("pass either config or keyword overrides, not both")
    return config if config is not None else IndexConfig(**overrides)


def _write_index(
    directory: Path, skills: list[Skill], config: IndexConfig, *, checksums: dict[str, str]
) -> None:
    import bm25s

    corpus = [
        sparse_document(s, card_weight=config.card_weight, index_body=config.index_body)
        for s in skills
    ]
    retriever = bm25s.BM25(k1=config.bm25_k1, b=config.bm25_b)
    retriever.index(corpus, show_progress=False)
    retriever.save(str(directory / BM25_DIR), show_progress=False)
    _write_json(directory / SKILLS_FILE, [s.model_dump(mode="json") for s in skills])
    embedding_dim = None
    if config.dense:
        vectors = dense_embeddings.encode([skill_card(s) for s in skills], model=config.dense_model)
        np.save(directory / EMBEDDINGS_FILE, vectors)
        embedding_dim = int(vectors.shape[1])
    manifest = {
        "kind": KIND,
        "format_version": FORMAT_VERSION,
        "settings": config.model_dump(mode="json"),
        "skill_names": [s.name for s in skills],
        "skill_checksums": checksums,
        "embedding_dim": embedding_dim,
        "files": _file_checksums(directory),
    }
    _write_json(directory / MANIFEST, manifest)


def _file_checksums(directory: Path) -> dict[str, str]:
    return {
        p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def _write_json(path: Path, payload: object) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def is_skill_index(folder: Path) -> bool:
    """Whether `folder` holds a skill index (its manifest's kind; indexes written before the
    kind was recorded are recognised by their format version and skill checksums)."""
    manifest = manifest_of(folder, MANIFEST)
    if manifest is None:
        return False
    legacy = "kind" not in manifest and {"format_version", "skill_checksums"} <= manifest.keys()
    return manifest.get("kind") == KIND or legacy


def _check_out_dir(out_dir: Path) -> None:
    check_output_dir(
        out_dir, is_own=is_skill_index, what="a skill index", command="sdar index-skills",
        overwrite=True,
    )  # fmt: skip


def _replace_dir(tmp: Path, out_dir: Path) -> None:
    """Move the finished `tmp` into place; an existing index is swapped out, then removed."""
    if out_dir.exists():
        _check_out_dir(out_dir)  # again: the folder may have changed while the index was built
        if not any(out_dir.iterdir()):
            out_dir.rmdir()
            os.replace(tmp, out_dir)
            return
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out_dir)


def read_manifest(index_dir: str | Path) -> dict:
    """The manifest of an index, after checking that it exists and has our format version."""
    path = Path(index_dir) / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"{index_dir} is not a skill index (no {MANIFEST}): {REBUILD_HINT}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path} is not valid JSON ({exc}): {REBUILD_HINT}") from exc
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{path} is not a JSON object: {REBUILD_HINT}")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ArtifactError(
            f"{index_dir} has index format version {version!r}, this sdar_core reads version "
            f"{FORMAT_VERSION}: {REBUILD_HINT}"
        )
    missing = [k for k, kind in _MANIFEST_KEYS.items() if not isinstance(manifest.get(k), kind)]
    if missing:
        raise ArtifactError(
            f"{path} lacks {', '.join(repr(k) for k in missing)} (or has the wrong type): the "
            f"manifest is damaged; {REBUILD_HINT}"
        )
    return manifest


def verify_index(index_dir: str | Path, *, skills_dir: str | Path | None = None) -> dict:
    """Check an index's manifest, files and (optionally) its source folder; return the manifest."""
    index_dir = Path(index_dir)
    manifest = read_manifest(index_dir)
    actual = _file_checksums(index_dir)
    for name, digest in manifest["files"].items():
        if actual.get(name) != digest:
            state = "is missing" if name not in actual else "was modified"
            raise ArtifactError(f"{index_dir}: index file {name} {state}: {REBUILD_HINT}")
    if skills_dir is not None:
        _verify_source(manifest, Path(skills_dir), index_dir)
    return manifest


def _verify_source(manifest: dict, skills_dir: Path, index_dir: Path) -> None:
    built = manifest["skill_checksums"]
    now = skill_checksums(skills_dir) if skill_files(skills_dir) else {}
    changed = sorted(n for n in built.keys() & now.keys() if built[n] != now[n])
    added = sorted(now.keys() - built.keys())
    removed = sorted(built.keys() - now.keys())
    if changed or added or removed:
        details = "; ".join(
            f"{label}: {', '.join(names)}"
            for label, names in (("changed", changed), ("added", added), ("removed", removed))
            if names
        )
        raise ArtifactError(
            f"skill index {index_dir} is out of date with {skills_dir} ({details}): {REBUILD_HINT}"
        )
