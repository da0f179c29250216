"""Helpers shared by the `sdar` commands: the pipelines package, loaded on demand, and tables."""

from __future__ import annotations

from typing import Any

__all__ = ["pipelines", "print_rows"]


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
