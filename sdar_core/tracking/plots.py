"""PNG figures of metric histories (matplotlib, Agg backend: no display is needed).

MLflow 3 cannot export its charts headlessly (DESIGN.md §4), so runs and comparisons log these.
A *group* maps a label (an algorithm) to `{round: [value per seed]}`; it is drawn as the mean with
a shaded 95% interval where a round has two or more seeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["Groups", "mean_interval", "plot_groups", "plot_task_type_success"]

Groups = Mapping[str, Mapping[int, Sequence[float]]]


def mean_interval(values: Sequence[float]) -> tuple[float, float | None, float | None]:
    """(mean, low, high) with the Student-t 95% interval; low/high are None for one value."""
    from sdar_core.evaluation.metrics import t_interval

    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None, None
    low, high = t_interval(list(values))
    return mean, low, high


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


_FRACTIONS = ("success", "gate", "ratio", "rate")  # panels whose values lie in [0, 1]
_COLUMNS = 3


def _y_limits(ax, metric: str, groups: Groups) -> None:
    """Fractions get [0, 1] (a little margin); a flat panel gets a symmetric margin of at least
    0.5 instead of matplotlib's ±4% of nothing."""
    values = [v for by_round in groups.values() for vs in by_round.values() for v in vs]
    if any(word in metric for word in _FRACTIONS) and all(0 <= v <= 1 for v in values):
        ax.set_ylim(-0.05, 1.05)
    elif values and max(values) == min(values):
        pad = max(0.5, 0.1 * abs(values[0]))
        ax.set_ylim(values[0] - pad, values[0] + pad)


def plot_groups(panels: Mapping[str, Groups], path: str | Path, *, title: str) -> Path | None:
    """One panel per metric (x: round, integer ticks), one line per group, at most three panels
    a row; None when every panel is empty."""
    from matplotlib.ticker import MaxNLocator

    panels = {name: groups for name, groups in panels.items() if groups}
    if not panels:
        return None
    plt = _pyplot()
    ncols = min(_COLUMNS, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.4 * nrows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (metric, groups) in zip(axes.flat, panels.items(), strict=False):
        for label, by_round in sorted(groups.items()):
            rounds = sorted(by_round)
            stats = [mean_interval(by_round[r]) for r in rounds]
            ax.plot(rounds, [s[0] for s in stats], marker="o", label=label)
            with_band = [(r, s) for r, s in zip(rounds, stats, strict=True) if s[1] is not None]
            if with_band:
                ax.fill_between(
                    [r for r, _ in with_band],
                    [s[1] for _, s in with_band],
                    [s[2] for _, s in with_band],
                    alpha=0.2,
                )
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel("round")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        _y_limits(ax, metric, groups)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, plt, Path(path))


def plot_task_type_success(
    columns: Mapping[str, Mapping[str, float]], path: str | Path, *, title: str
) -> Path:
    """Grouped bars: success per task type for each labelled checkpoint (e.g. start, final)."""
    plt = _pyplot()
    task_types = sorted({t for values in columns.values() for t in values})
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(task_types)), 3.6))
    width = 0.8 / max(1, len(columns))
    for i, (label, values) in enumerate(columns.items()):
        xs = [j + i * width for j in range(len(task_types))]
        ax.bar(xs, [values.get(t, 0.0) for t in task_types], width=width, label=label)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(task_types))], task_types, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("success")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, plt, Path(path))


def _save(fig, plt, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return path
