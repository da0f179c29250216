"""Skill documents: Markdown files with a YAML front matter, loaded and validated.

A skill file looks like::

    ---
    name: alfworld-heat-then-place
    environment: alfworld
    task_types: [pick_heat_then_place_in_recep]
    keywords: [heat, hot, microwave]
    summary: Find the object, heat it with the microwave, then put it at the target.
    ---
    # Markdown body: the text the teacher (or the Skill-Prompt student) reads.

A skill whose task types are exactly ``[general]`` is a *general* skill: the retriever includes it
for every query (unless configured off) and never ranks it.

Size limits: a body holds at most `MAX_BODY_CHARS` (32,000) characters, about 8k tokens, twice
the teacher's whole default prompt budget (4,096 tokens), and a file over `MAX_FILE_BYTES`
(128 KiB) is refused before it is read: a skill that cannot fit in any prompt would only be
tokenized, then dropped, at every teacher step.

Departure from the reference: the reference keeps bare Markdown files and a separate keyword table
(``skill_mapping.json``) that maps task types to files. Here each file carries its own metadata, so
a skill set is self-describing and can be indexed; ``importer.py`` converts the reference layout.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from sdar_core.errors import ArtifactError

GENERAL_TASK_TYPE = "general"
SKILL_SUFFIX = ".md"
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)(.*)\Z", re.DOTALL)
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
MAX_BODY_CHARS = 32_000
MAX_FILE_BYTES = 128 * 1024


class Skill(BaseModel):
    """One skill document: validated front matter plus the Markdown body."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    name: str
    environment: str
    task_types: tuple[str, ...]
    keywords: tuple[str, ...] = ()
    summary: str
    body: str

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                "must be lower-case letters, digits, '.', '_' or '-' and start with a letter or "
                f"digit (got {value!r}): rename it, e.g. 'alfworld-heat-then-place'"
            )
        return value

    @field_validator("environment", "summary", "body")
    @classmethod
    def _check_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty: write it in the file")
        return value.strip()

    @field_validator("body")
    @classmethod
    def _check_body_size(cls, value: str) -> str:
        if len(value) > MAX_BODY_CHARS:
            raise ValueError(
                f"has {len(value):,} characters, more than the limit of {MAX_BODY_CHARS:,} (about "
                "8k tokens, twice the teacher's prompt budget): shorten it or split it into "
                "several skills"
            )
        return value

    @field_validator("task_types")
    @classmethod
    def _check_task_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or any(not t.strip() for t in value):
            raise ValueError(
                "must list at least one task type, e.g. [pick_and_place_simple] or [general]"
            )
        if GENERAL_TASK_TYPE in value and len(value) > 1:
            raise ValueError("a general skill lists only [general]: drop the other task types")
        return tuple(t.strip() for t in value)

    @field_validator("keywords")
    @classmethod
    def _check_keywords(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not k.strip() for k in value):
            raise ValueError("must not contain empty entries: remove them")
        return tuple(k.strip() for k in value)

    @property
    def is_general(self) -> bool:
        return self.task_types == (GENERAL_TASK_TYPE,)

    def to_markdown(self) -> str:
        """The file text this skill was (or would be) loaded from, front matter included."""
        meta = {
            "name": self.name,
            "environment": self.environment,
            "task_types": list(self.task_types),
            "keywords": list(self.keywords),
            "summary": self.summary,
        }
        header = yaml.safe_dump(meta, sort_keys=False, default_flow_style=None, width=1000)
        return f"---\n{header}---\n{self.body}\n"

    def render(self) -> str:
        """The text placed in a prompt: the body, which opens with its own heading."""
        return self.body


def parse_skill(text: str, *, source: str) -> Skill:
    """Parse one skill file's text; `source` names the file in error messages."""
    match = _FRONT_MATTER.match(text.lstrip("\ufeff"))
    if match is None:
        raise ArtifactError(
            f"{source}: no front matter. Start the file with a '---' line, then name, environment, "
            "task_types, keywords and summary, then a closing '---' line."
        )
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        raise ArtifactError(f"{source}: the front matter is not valid YAML ({exc})") from exc
    if not isinstance(meta, dict):
        raise ArtifactError(f"{source}: the front matter must be a mapping of field: value lines")
    for field in ("task_types", "keywords"):
        if isinstance(meta.get(field), str):  # accept a single bare string for a one-item list
            meta[field] = [meta[field]]
    try:
        return Skill(**meta, body=match.group(2))
    except ValidationError as exc:
        raise ArtifactError(f"{source}: {_describe(exc)}") from exc
    except TypeError as exc:
        raise ArtifactError(f"{source}: bad front matter ({exc})") from exc


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "front matter"
        if err["type"] == "missing":
            parts.append(f"field '{field}' is missing: add it to the front matter")
        elif err["type"] == "extra_forbidden":
            parts.append(
                f"field '{field}' is not a skill field: use only name, environment, task_types, "
                "keywords, summary"
            )
        else:
            parts.append(f"field '{field}' {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def load_skill(path: str | Path) -> Skill:
    """Load and validate one skill file."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ArtifactError(
                f"{path}: the skill file has {size:,} bytes, more than the limit of "
                f"{MAX_FILE_BYTES:,}: shorten it (a body holds at most {MAX_BODY_CHARS:,} "
                "characters) or split it into several skills"
            )
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: cannot read skill file ({exc})") from exc
    return parse_skill(text, source=str(path))


def skill_files(skills_dir: str | Path) -> list[Path]:
    """The skill files under a directory (recursively), in a stable order."""
    root = Path(skills_dir)
    if not root.is_dir():
        raise ArtifactError(f"skills directory {root} does not exist: pass a folder of .md skills")
    return sorted(p for p in root.rglob(f"*{SKILL_SUFFIX}") if p.is_file())


def load_skills(skills_dir: str | Path) -> list[Skill]:
    """Load every skill file under a directory; names must be unique."""
    files = skill_files(skills_dir)
    if not files:
        raise ArtifactError(f"{skills_dir} holds no {SKILL_SUFFIX} skill files")
    skills = [load_skill(p) for p in files]
    check_unique_names(skills, files)
    return skills


def check_unique_names(skills: Iterable[Skill], sources: Iterable[Path | str]) -> None:
    seen: dict[str, str] = {}
    for skill, source in zip(skills, sources, strict=True):
        if skill.name in seen:
            raise ArtifactError(
                f"{source}: field 'name' {skill.name!r} is already used by {seen[skill.name]}: "
                "give every skill a unique name"
            )
        seen[skill.name] = str(source)


def skill_checksums(skills_dir: str | Path) -> dict[str, str]:
    """sha256 of each skill file's bytes, keyed by its path relative to `skills_dir`."""
    root = Path(skills_dir)
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in skill_files(root)
    }


def bundled_skills_dir(environment: str = "alfworld") -> Path:
    """The folder of skills shipped with sdar_core for `environment`."""
    path = Path(str(resources.files("sdar_core.skills") / "library" / environment))
    if not path.is_dir():
        available = sorted(p.name for p in path.parent.iterdir() if p.is_dir())
        raise ArtifactError(
            f"no bundled skills for environment {environment!r}: choose one of {available}"
        )
    return path
