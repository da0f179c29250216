"""`sdar replicate`: the seeded comparison of arms (sdar_core.run.replicate), as a command.

The runner comes from pipelines.replicate through the lazy `pipelines()` loader: sdar_core never
imports pipelines/ at module level (tests/test_layers.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sdar_core.cli_common import ceiling_option, eval_every_option, pipelines

__all__ = ["replicate"]

# the evaluation options shared with the other commands (cli_common), with this command's defaults
EvalEvery = eval_every_option("1, or the config file's")
Ceiling = ceiling_option("yes in the miniature worlds")


def _numbers(text: str, what: str, kind: type, example: str) -> list:
    try:
        return [kind(part) for part in text.split(",") if part.strip()]
    except ValueError:
        message = f"{what} must be comma-separated numbers, e.g. {example}"
        raise typer.BadParameter(message) from None


def replicate(
    out_dir: Annotated[
        Path, typer.Option(help="model, games, MLflow store, the table [default: runs/replicate]")
    ] = Path("runs/replicate"),
    algorithms: Annotated[
        str,
        typer.Option(
            help="comma-separated training presets, GRPO first as the baseline: GRPO, GRPO+OPSD "
            "(grpo_opsd, ungated), SDAR and pure OPSD (opsd)"
        ),
    ] = "grpo,grpo_opsd,sdar,opsd",
    seeds: Annotated[str, typer.Option(help="comma-separated seeds")] = "0,1,2",
    rounds: Annotated[int | None, typer.Option(help="rounds R per run [default: 2]")] = None,
    sdar_coefs: Annotated[
        str | None,
        typer.Option(
            help="also run SDAR at these distillation coefficients (arms sdar@C), e.g. 0.01,0.1; "
            "the preset's 0.01 is the sdar arm itself [default: none]"
        ),
    ] = None,
    noise: Annotated[
        float | None,
        typer.Option(
            help="also run SDAR and GRPO+OPSD with this share of teacher contexts given a wrong "
            "skill (arms sdar+noiseN, grpo_opsd+noiseN), e.g. 0.5 [default: none]"
        ),
    ] = None,
    eval_every: EvalEvery = None,
    ceiling: Ceiling = None,
    level: Annotated[
        float, typer.Option(help="held-out success whose first round each arm reports")
    ] = 0.8,
    config: Annotated[
        Path | None,
        typer.Option(help="RunConfig JSON file with the shared settings (flags override it)"),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="training runs at a time, each in a process of its own with an equal share of "
            "the cores as torch threads",
        ),
    ] = 1,
) -> None:
    """Run GRPO, GRPO+OPSD, SDAR and OPSD for several seeds from one warm start through the
    pipeline (kfp.local); write the tables, per-round curves, plots and an MLflow parent run
    with every arm/seed run as its child."""
    from sdar_core.run import RunConfig
    from sdar_core.run.arms import arms_for
    from sdar_core.run.config import read_config_file
    from sdar_core.run.lock import out_dir_lock

    fields = read_config_file(config) if config is not None else {}
    fields["out_dir"] = out_dir
    if rounds is not None:
        fields["rounds"] = rounds
    if eval_every is not None:
        fields["eval_every"] = eval_every
    fields.setdefault("eval_every", 1)  # every round: each arm has a curve
    if ceiling is not None:
        fields["ceiling"] = ceiling
    base = RunConfig.model_validate(fields)
    arms = arms_for(
        [a.strip() for a in algorithms.split(",") if a.strip()],
        sdar_coefs=_numbers(sdar_coefs or "", "--sdar-coefs", float, "0.01,0.1"),
        noise=noise,
    )
    run_replicate = pipelines("pipelines.replicate").replicate_local
    with out_dir_lock(base.out_dir):  # its runs hold it in turn; no other run starts in between
        result = run_replicate(
            base,
            arms=arms,
            seeds=_numbers(seeds, "--seeds", int, "0,1,2"),
            level=level,
            on_run=typer.echo,
            workers=workers,
        )
    typer.echo((result.out_dir / "replicate.md").read_text())
    typer.echo(
        f"warm start {result.seconds['warm_start']:.0f} s, training runs "
        f"{result.seconds['training_runs']:.0f} s, total {result.seconds['total']:.0f} s "
        "(by phase: the wall-time table above)"
    )
    typer.echo(f"files: {result.out_dir}")
    typer.echo(f"MLflow parent run (arm/seed runs are its children): {result.parent_run_id}")
