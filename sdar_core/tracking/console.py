"""What the embedded run shows on the terminal: one line per stage and a progress bar; everything
else kfp.local prints (executor inputs, warnings, the tasks' own logs) goes to a log file.

A stage announces itself with one line that starts with `MARK` (`stage_line`, printed by
`StageTracker` when a stage ends: its name, round, seconds and key figures). kfp.local runs each
task as a subprocess and prints the task's output line by line into `sys.stdout`, so
`ConsoleFilter`, put in place of `sys.stdout` around the pipeline call, sees every line: it
writes all of them to the log, echoes the `MARK` lines, counts kfp's "Executing task" lines on a
progress bar over the pipeline's tasks, and shows a stage's own tqdm progress (the subprocess
writes its bar refreshes as lines ending in carriage returns, which text-mode pipes split into
lines) as that bar's postfix. The bar is drawn only on a terminal; piped output gets, in its
place, one `[sdar] task <name>` line as each task starts, and no colour codes.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from typing import IO, Any

__all__ = ["KEY_FIGURES", "MARK", "ConsoleFilter", "stage_line"]

MARK = "[sdar] "
# the figures a stage's line shows, in order (metric names without the stage prefix)
KEY_FIGURES: dict[str, tuple[str, ...]] = {
    "index": ("n_skills",),
    "sft": ("loss", "steps"),
    "rollout": ("success_rate", "invalid_action_rate", "generated_tokens_per_second"),
    "teacher": ("teacher_mean_gap", "teacher_mean_skill_tokens"),
    "update": ("pg_loss", "kl_loss", "sdar/gate_mean", "steps"),
    "eval": ("success/all", "invalid_action_rate"),
    "eval_base": ("success/all", "invalid_action_rate"),
    "eval_ceiling": ("success/all", "invalid_action_rate"),
}
_TASK_START = re.compile(r"Executing task '?([\w-]+)'?")
_TQDM = re.compile(r"^\s*(?P<desc>[\w ./-]+?):\s+(?P<pct>\d+)%\|.*?\|\s*(?P<n>\d+)/(?P<total>\d+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def stage_line(stage: str, round: int, seconds: float, metrics: Mapping[str, float]) -> str:
    """`[sdar] rollout  round 0   12.3 s  success_rate 0.000  ...` (key figures present only)."""
    figures = []
    for name in KEY_FIGURES.get(stage, ()):
        value = metrics.get(f"{stage}/{name}")
        if value is not None:
            figures.append(f"{name} {value:.4g}")
    return f"{MARK}{stage:<8} round {round:<3} {seconds:7.1f} s  " + "  ".join(figures)


class ConsoleFilter(io.TextIOBase):
    """A text stream: every line into `log`; stage lines (and a progress bar) onto `terminal`."""

    def __init__(self, log: IO[str], terminal: IO[str], *, total_tasks: int) -> None:
        self.log, self.terminal = log, terminal
        self._buffer = ""
        self._bar: Any = None
        if terminal.isatty():
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total_tasks, desc="pipeline", unit="task", file=terminal)

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.log.write(text)
        self._buffer += text
        *lines, self._buffer = re.split(r"\r\n|\r|\n", self._buffer)
        for line in lines:
            self._line(_ANSI.sub("", line))
        return len(text)

    def flush(self) -> None:
        self.log.flush()
        self.terminal.flush()

    def _line(self, line: str) -> None:
        if MARK in line:
            self._echo(line[line.index(MARK) :])
        elif started := _TASK_START.search(line):
            if self._bar is None:  # no bar to draw: one short line per task instead
                self._echo(f"{MARK}task {started.group(1)}")
            else:
                self._bar.update(1)
                self._bar.set_postfix_str(started.group(1))
        elif self._bar is not None and (progress := _TQDM.match(line)):
            self._bar.set_postfix_str(
                f"{progress['desc'].strip()} {progress['n']}/{progress['total']}"
            )

    def _echo(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=self.terminal)
        else:
            self.terminal.write(line + "\n")
            self.terminal.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        super().close()
