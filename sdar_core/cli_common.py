"""Helpers shared by the `sdar` commands: the pipelines package, loaded on demand, tables, and the
end of a run whose stage failed."""

from __future__ import annotations

from typing import Annotated, Any, NoReturn

import typer

__all__ = ["ceiling_option", "eval_every_option", "pipelines", "print_rows", "stage_failed"]


def eval_every_option(default: str) -> Any:
    """The `--eval-every K` option of `sdar run`, `compile`, `replicate` (eval_every)."""
    return Annotated[
        int | None,
        typer.Option(
            help="also evaluate the checkpoint of every K-th round (held-out success as a curve "
            f"over rounds; the last round is the final evaluation) [default: {default}]"
        ),
    ]


def ceiling_option(default: str) -> Any:
    """The `--ceiling/--no-ceiling` option of `sdar run`, `compile` and `replicate`."""
    return Annotated[
        bool | None,
        typer.Option(
            "--ceiling/--no-ceiling",
            help="evaluate the start checkpoint once more with the retrieved skills in its "
            f"prompt, as the teacher sees them (the teacher's ceiling) [default: {default}]",
        ),
    ]


def pipelines(module: str = "pipelines") -> Any:
    """Import the `pipelines` package (installed beside sdar_core; it imports kfp, sdar_core never
    does), so only the commands that compile, submit or run the pipeline load it."""
    import importlib

    return importlib.import_module(module)


def print_rows(title: str, rows: list[dict], columns: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns, title=title)
    for row in rows:
        cells = [row.get(c) for c in columns]
        table.add_row(
            *("-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v) for v in cells)
        )
    Console().print(table)


def stage_failed(failed: Any) -> NoReturn:
    """End a command whose run stopped at a stage's failure (pipelines.task_failures.StageFailed)
    with the stage's one line and the log holding its traceback; exit 2 for bad input (as for a
    bad flag), 1 for a bug. With `sdar --debug`, the launcher's traceback instead."""
    import click
    import typer

    context = click.get_current_context(silent=True)
    if context is not None and context.find_root().params.get("debug"):
        raise failed
    typer.echo(f"error: {failed}", err=True)
    typer.echo(f"the stage's traceback is in the task log: {failed.log_path}", err=True)
    raise typer.Exit(2 if failed.bad_input else 1)
