"""The embedded run's inputs, made once under `out_dir` and reused by later runs: the model, the
games and the MLflow store with its experiment.

The model is `config.model` when that is a model folder (used in place); a .gguf file, a packaged
model name (`smollm2`) or a hub id is imported once into `out_dir/models/<name>` and reused;
without `config.model` the tiny model is built at `out_dir/model`. `config.data` is used in place.

The games are generated ALFWorld games, or, for a benchmark with shipped data (WebShop, Search-QA;
`ENV_DATA` in config.py), the shipped folder itself, used in place and never copied.
Reuse is checked, not assumed: games are regenerated when the manifest's counts or seed differ
from the requested ones (only a folder `generate_games` wrote is replaced), and the model is built
when its folder is missing or empty (a non-empty folder without config.json is refused, never
deleted). A model folder used in place is checked here as its stages would check it (pickle-only
or damaged weights, a chat template that escapes or hangs), so it is refused before any task.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sdar_core.errors import ArtifactError
from sdar_core.run.config import RunConfig, env_data

__all__ = ["PreparedInputs", "prepare_inputs"]


@dataclass(frozen=True)
class PreparedInputs:
    model_dir: Path
    games_dir: Path
    tracking_uri: str
    experiment_id: str
    pipeline_root: Path


def _model(out: Path, source: str | None = None, shape=None) -> Path:
    from sdar_core.models import build_tiny_model
    from sdar_core.models.tiny import TinyModelConfig

    if source is not None:
        return _given_model(out, source)
    shape = shape or TinyModelConfig()
    model_dir = out / "model"
    if (model_dir / "config.json").is_file() and not _same_shape(model_dir, shape):
        raise ArtifactError(
            f"{model_dir} holds a tiny model of another shape than tiny_model asks for: use "
            "another out_dir, or delete that folder to build the new shape"
        )
    if not (model_dir / "config.json").is_file():
        build_tiny_model(model_dir, config=shape)  # refuses a non-empty folder: never deleted
    return model_dir


def _same_shape(model_dir: Path, shape) -> bool:
    """Whether the model in `model_dir` has `shape`'s width and depth (config.json)."""
    found = json.loads((model_dir / "config.json").read_text())
    return all(
        found.get(name) == getattr(shape, name)
        for name in ("hidden_size", "intermediate_size", "num_hidden_layers")
    )


def _given_model(out: Path, source: str) -> Path:
    if (Path(source) / "config.json").is_file():
        _check_model_folder(Path(source))
        return Path(source).resolve()
    from sdar_core.models.importer import import_model

    name = Path(source).stem if Path(source).is_file() else source.replace("/", "--")
    model_dir = out / "models" / name
    if (model_dir / "config.json").is_file():
        return model_dir
    return import_model(source, model_dir)  # refuses a non-empty folder: never deleted here


def _check_model_folder(folder: Path) -> None:
    """Refuse a model folder used in place as its stages would, before any task starts: the
    weights as `load_model` checks them (safetensors only, intact), the chat template as
    `load_tokenizer` checks it (rendered once, bounded, in the sandbox)."""
    from sdar_core.models.loading import check_weights, load_tokenizer

    check_weights(str(folder))
    load_tokenizer(folder)


def _games(out: Path, config: RunConfig) -> Path:
    if config.data is not None:
        if not config.data.is_dir():
            raise ArtifactError(
                f"data folder {config.data} does not exist: pass the {config.env} data folder "
                "(sdar gen-games writes ALFWorld games) or leave data out"
            )
        return config.data.resolve()
    shipped = env_data(config.env).shipped_dir
    if shipped is not None:
        return shipped()
    from sdar_core.envs.alfworld import generate_games

    games_dir = out / "games"
    counts = {"train": config.n_train_games, "valid_seen": config.n_valid_games, "valid_unseen": 0}
    n_warmup = config.n_warmup_games if config.world == "miniature2" else 0
    if config.world == "miniature2":
        counts["warmup"] = n_warmup
    manifest = games_dir / "manifest.json"
    if manifest.is_file():
        found = json.loads(manifest.read_text())
        same = found.get("counts") == counts and found.get("seed") == config.games_seed
        same = same and found.get("balanced_kinds", False) == config.balanced_kinds
        if same and found.get("world", "alfworld") == config.world:
            return games_dir
    generate_games(
        games_dir,
        n_train=config.n_train_games,
        n_valid_seen=config.n_valid_games,
        n_valid_unseen=0,
        seed=config.games_seed,
        overwrite=True,
        world=config.world,
        n_warmup=n_warmup,
        balanced_kinds=config.balanced_kinds,
    )
    return games_dir


def prepare_inputs(config: RunConfig) -> PreparedInputs:
    """Build (or reuse) the model and games, and create the MLflow store and experiment here in
    the parent process (a fresh store's migrations take seconds; DESIGN.md §4)."""
    from sdar_core.tracking import prepare_experiment

    out = config.out_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    tracking_uri = config.resolved_tracking_uri()
    local_store = tracking_uri.startswith("sqlite:")
    experiment_id = prepare_experiment(
        tracking_uri, config.experiment, artifact_root=out / "mlruns" if local_store else None
    )
    return PreparedInputs(
        model_dir=_model(out, config.model, config.tiny_model),
        games_dir=_games(out, config),
        tracking_uri=tracking_uri,
        experiment_id=experiment_id,
        pipeline_root=out / "pipeline_root",
    )
