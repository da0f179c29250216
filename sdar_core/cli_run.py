"""`sdar run`: the whole pipeline here under kfp.local (pipelines.local.run_local), as a command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sdar_core.cli_common import (
    ceiling_option,
    eval_every_option,
    pipelines,
    print_rows,
    stage_failed,
)

__all__ = ["STAGE_ORDER", "run", "stage_seconds_line"]

# the evaluation options shared with the other commands (cli_common), with this command's defaults
EvalEvery = eval_every_option("start and final only")
Ceiling = ceiling_option("yes in the miniature worlds for presets with a teacher, else no")


# the stages in the order a run meets them; any other (e.g. eval_ceiling) follows
STAGE_ORDER = (
    "index", "eval_base", "sft", "eval", "eval_ceiling", "rollout", "teacher", "update"
)  # fmt: skip


def stage_seconds_line(seconds: dict[str, float]) -> str:
    """'index 1, eval_base 200, ...': each stage's seconds, in STAGE_ORDER, then the rest."""
    order = {name: i for i, name in enumerate(STAGE_ORDER)}
    names = sorted(seconds, key=lambda name: (order.get(name, len(order)), name))
    return ", ".join(f"{name} {seconds[name]:.0f}" for name in names)


def run(
    out_dir: Annotated[
        Path | None, typer.Option(help="model, games, MLflow store [default: runs/embedded]")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="model folder, .gguf file, smollm2 (sdar import-model) or hub id "
            "[default: a tiny model built under OUT_DIR]"
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            "--games",
            help="the env's data folder (ALFWorld games from sdar gen-games, WebShop or "
            "Search-QA data) [default: generated games / the shipped data]",
        ),
    ] = None,
    algorithm: Annotated[str | None, typer.Option(help="preset [default: sdar]")] = None,
    env: Annotated[
        str | None, typer.Option(help="alfworld, webshop or search [default: alfworld]")
    ] = None,
    world: Annotated[
        str | None,
        typer.Option(
            help="alfworld env: miniature (small world with household conventions, not "
            "ALFWorld), miniature2 (two conventions per task, warm start on other kinds; not "
            "ALFWorld) or alfworld (generated ALFWorld-like games) [default: miniature]"
        ),
    ] = None,
    rounds: Annotated[
        int | None, typer.Option(help="rounds R [default: 2; 0 for presets that do not train]")
    ] = None,
    rounds_per_run: Annotated[
        int | None,
        typer.Option(
            help="run the rounds as a chain of pipeline runs of at most this many rounds, each "
            "from the previous one's final checkpoint, as a cluster run does [default: one run]"
        ),
    ] = None,
    warm_start: Annotated[
        bool | None,
        typer.Option(help="supervised warm start first [default: yes for the miniature, else no]"),
    ] = None,
    eval_every: EvalEvery = None,
    ceiling: Ceiling = None,
    lora: Annotated[
        bool | None,
        typer.Option(
            "--lora/--no-lora",
            help="train LoRA adapters in the warm start and the updates; --no-lora: all weights "
            "[default: LoRA for a given model on CPU, all weights for the tiny model]",
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="seed of rollouts, update, warm start [default: 0]")
    ] = None,
    n_train_games: Annotated[
        int | None, typer.Option(help="training games [default: 64 miniature, else 12]")
    ] = None,
    n_valid_games: Annotated[
        int | None, typer.Option(help="evaluation games [default: 32 miniature, else 12]")
    ] = None,
    balanced_kinds: Annotated[
        bool | None,
        typer.Option(
            "--balanced-kinds/--random-kinds",
            help="world miniature: every object kind gets an equal share of the generated games "
            "[default: random kinds]",
        ),
    ] = None,
    experiment: Annotated[str | None, typer.Option(help="MLflow experiment [default: sdar]")] = (
        None
    ),
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow URI [default: sqlite under OUT_DIR]")
    ] = None,
    resume: Annotated[
        bool | None,
        typer.Option(
            "--resume/--no-resume",
            help="reuse the stages an earlier run with the same settings finished, e.g. after a "
            "kill; --no-resume starts a new MLflow run [default: yes]",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="RunConfig JSON file (stage configs nested); given flags override it"),
    ] = None,
) -> None:
    """Run the whole pipeline here under kfp.local (no Docker, no Kubernetes) and print the
    success table before and after training, with the MLflow run id."""
    from sdar_core.run import RunConfig
    from sdar_core.run.config import read_config_file

    fields = read_config_file(config) if config is not None else {}
    flags = {
        "out_dir": out_dir,
        "model": model,
        "data": data,
        "algorithm": algorithm,
        "env": env,
        "world": world,
        "rounds": rounds,
        "rounds_per_run": rounds_per_run,
        "warm_start": warm_start,
        "eval_every": eval_every,
        "ceiling": ceiling,
        "lora": lora,
        "n_train_games": n_train_games,
        "n_valid_games": n_valid_games,
        "balanced_kinds": balanced_kinds,
        "experiment": experiment,
        "tracking_uri": tracking_uri,
        "resume": resume,
    }
    fields |= {name: value for name, value in flags.items() if value is not None}
    run_config = RunConfig.model_validate(fields)
    if seed is not None:
        run_config = run_config.with_seed(seed)
    try:
        result = pipelines("pipelines.local").run_local(run_config)
    except pipelines("pipelines.task_failures").StageFailed as failed:
        stage_failed(failed)
    labels = [k for k in result.rows[0] if k != "task_type"] if result.rows else []
    print_rows("success rate by task type", result.rows, ["task_type", *labels])
    print_rows(
        "valid actions by evaluation (1 - invalid_action_rate; Wilson 95%, rough)",
        result.valid_actions,
        ["evaluation", "valid_actions", "low", "high", "valid/actions"],
    )
    from sdar_core.run.report import learning_line

    if result.ceiling is not None:
        typer.echo(result.ceiling)
    for summary in (result.learning_since_base, result.learning):
        if summary is not None:
            typer.echo(learning_line(summary))
    typer.echo(f"MLflow run id: {result.run_id} ({result.run_name})")
    typer.echo(f"tasks run: {', '.join(result.executed) or 'none (all reused)'}")
    typer.echo(
        f"set-up {result.setup_seconds:.0f} s, pipeline {result.pipeline_seconds:.0f} s "
        f"({result.n_tasks} tasks, {result.overhead_per_task:.1f} s runner overhead per task "
        "that ran)"
    )
    if result.stage_seconds:
        typer.echo("seconds per stage (all rounds): " + stage_seconds_line(result.stage_seconds))
    typer.echo(f"task logs: {result.log_path}")
    typer.echo(f"open the UI: mlflow ui --backend-store-uri {result.tracking_uri}")
