"""`sdar replicate`: the seeded comparison of algorithms (sdar_core.run.replicate), as a command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["replicate"]


def _ints(text: str, what: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"{what} must be comma-separated integers, e.g. 0,1,2") from None


def replicate(
    out_dir: Annotated[
        Path, typer.Option(help="model, games, MLflow store, the table [default: runs/replicate]")
    ] = Path("runs/replicate"),
    algorithms: Annotated[
        str, typer.Option(help="comma-separated training presets, GRPO first as the baseline")
    ] = "grpo,opsd,sdar",
    seeds: Annotated[str, typer.Option(help="comma-separated seeds")] = "0,1,2",
    rounds: Annotated[int | None, typer.Option(help="rounds R per run [default: 2]")] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="RunConfig JSON file with the shared settings (flags override it)"),
    ] = None,
) -> None:
    """Run GRPO, GRPO+OPSD and SDAR for several seeds from one warm start through the pipeline
    (kfp.local) and write the comparison table, plots and an MLflow comparison run."""
    from sdar_core.run import RunConfig
    from sdar_core.run.config import read_config_file
    from sdar_core.run.lock import out_dir_lock
    from sdar_core.run.replicate import replicate as run_replicate

    fields = read_config_file(config) if config is not None else {}
    fields["out_dir"] = out_dir
    if rounds is not None:
        fields["rounds"] = rounds
    base = RunConfig.model_validate(fields)
    names = [a.strip() for a in algorithms.split(",") if a.strip()]
    with out_dir_lock(base.out_dir):  # its runs hold it in turn; no other run starts in between
        result = run_replicate(
            base, algorithms=names, seeds=_ints(seeds, "--seeds"), on_run=typer.echo
        )
    typer.echo((result.out_dir / "replicate.md").read_text())
    typer.echo(
        f"warm start {result.seconds['warm_start']:.0f} s, training runs "
        f"{result.seconds['training_runs']:.0f} s, total {result.seconds['total']:.0f} s"
    )
    typer.echo(f"files: {result.out_dir}")
    if result.comparison_run_id:
        typer.echo(f"MLflow comparison run: {result.comparison_run_id}")
