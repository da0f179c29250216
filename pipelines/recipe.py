"""Recipes: one JSON file holding a documented configuration of the pipeline (`sdar compile
--recipe FILE`), e.g. pipelines/recipes/qwen2.5-3b-alfworld.json, the authors' settings of the
paper's ALFWorld row.

A recipe has a name, a description, the hub id of its base model, the compile-time choices of
`PipelineOptions` (algorithm, env, rounds, profile, num_gpus, ...) and, per stage-config
parameter (`rollout_config`, `update_config`, ...), the fields it lays over the profile's
defaults; those become the compiled parameters' defaults, so a submission without `--param`
runs the recipe. Every key is optional but name, description and model; a key left out (or null)
keeps the default of `sdar compile`, and a flag given on the command line overrides the recipe.

The model cannot be imported into a pipeline by hub id (KFP's importer takes object-store
URIs), so `model` documents which model the `model_uri` artifact must hold (`sdar import-model
HUB_ID DIR`, uploaded); it goes into the pipeline's description.

Bad input is refused with one line naming the file, the field and the fix: an unknown key (with
the closest known one), a value of the wrong type, a stage-config field that its stage would
refuse (each stage config is built at compile time as the stage builds it).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipelines.sdar_pipeline import PipelineOptions
from sdar_core.errors import ConfigError, closest_name_fix, error_message
from sdar_core.limits import OptionalCount
from sdar_core.run.config import read_json_object

__all__ = ["Recipe", "load_recipe", "recipe_options"]

StageFields = dict[str, Any] | None
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


class Recipe(BaseModel):
    """The fields of a recipe file (module docstring); None keeps `sdar compile`'s default."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    name: str = Field(description="short name, e.g. qwen2.5-3b-alfworld")
    description: str = Field(description="what the recipe runs and where its numbers come from")
    model: str = Field(description="hub id of the base model the model_uri artifact must hold")
    algorithm: str | None = None
    env: str | None = None
    rounds: OptionalCount = None
    # compile the rounds as a chain of pipelines of at most this many rounds (pipelines/chain.py)
    rounds_per_run: OptionalCount = None
    warm_start: bool | None = None
    eval_every: OptionalCount = None  # PipelineOptions.eval_every
    ceiling: bool | None = None  # PipelineOptions.ceiling
    profile: Literal["cluster", "local"] | None = None
    num_gpus: OptionalCount = None
    pvc_name: str | None = None
    mlflow_secret: str | None = None
    gpu_node_selector: dict[str, str] | None = None
    gpu_toleration: bool | None = None
    update_memory: str | None = None
    workspace_size: str | None = None
    model_uri: str | None = None
    games_uri: str | None = None
    index_config: StageFields = None
    sft_config: StageFields = None
    rollout_config: StageFields = None
    teacher_config: StageFields = None
    update_config: StageFields = None
    eval_config: StageFields = None

    @field_validator("model")
    @classmethod
    def _hub_id(cls, value: str) -> str:
        if not _HUB_ID.fullmatch(value):
            raise ValueError(f"{value!r} is not a hub id: write owner/name, e.g. Qwen/Qwen2.5-3B")
        return value

    def options(self, **flags: Any) -> PipelineOptions:
        """The PipelineOptions of this recipe, with the flags that are not None over it."""
        from sdar_core.run.config import STAGE_CONFIGS

        skip = {"name", "description", "model", "rounds_per_run"}  # not a PipelineOptions field
        fields = self.model_dump(exclude_none=True, exclude=skip)
        stage_configs = {p: fields.pop(p) for p in STAGE_CONFIGS if p in fields}
        fields |= {name: value for name, value in flags.items() if value is not None}
        if "gpu_node_selector" in fields:
            selector = fields["gpu_node_selector"]
            pairs = selector.items() if isinstance(selector, dict) else selector
            fields["gpu_node_selector"] = tuple(sorted(pairs))
        note = f"Recipe {self.name}: {self.description} Base model: {self.model}."
        return PipelineOptions(**fields, stage_configs=stage_configs, note=note)


def load_recipe(path: str | Path) -> Recipe:
    """The recipe in the JSON file `path`; ConfigError (one line naming the file) if it is not
    one."""
    data = read_json_object(
        path,
        what="recipe",
        write="one JSON object",
        example='{"name": ..., "description": ..., "model": ...}',
    )
    known = list(Recipe.model_fields)
    for key in data:
        if key not in known:
            fix = closest_name_fix(key, known, noun="keys")
            raise ConfigError(f"recipe {path}: {key!r} is not a recipe key: {fix}")
    try:
        return Recipe.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"recipe {path}: {error_message(err)}") from None


def recipe_options(path: str | Path, **flags: Any) -> PipelineOptions:
    """The checked PipelineOptions of the recipe at `path` with `flags` (None: not given) over
    it; every error names the file."""
    options = load_recipe(path).options(**flags)
    try:
        options.check()
    except ConfigError as err:
        raise type(err)(f"recipe {path}: {err}") from None
    return options
