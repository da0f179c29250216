"""Prompt for one ALFWorld step: a system message with the rules and output format, and a user
message with the task, the step count, the last k (observation, action) pairs, the current
observation and the admissible actions (`build_messages`, the window prompt).

In a full-chat conversation the task, the rules and every earlier step are already in the chat, so
the user message after each action (`build_continuation`) says only what is new: the step number,
the observation the action produced and the admissible actions now. The first message of such a
conversation is `build_messages` with history_length=0.

The admissible actions in a continuation come in one of two forms (`ADMISSIBLE_FORMS`):
- "full": the whole list again, as in the first message;
- "delta": the change from the list in the previous message, `Admissible actions now: +['a', 'b']
  -['c']` ("unchanged" when nothing changed), since the earlier lists are in the conversation.
  The engine lists actions sorted and unique, so the current list is exactly sorted(previous -
  removed + added) (`apply_admissible_delta`); where that would not give the list back exactly (a
  list that is not sorted and unique, an action holding a quote) the full list is sent instead.
Which is better: the full list needs no tracking and is what the reference shows (its prompts are
window prompts, which always carry the full list); the delta keeps long conversations short. The
list is ~110 tokens of the tiny tokenizer per turn, about half of a whole trajectory, and most
steps change only a few actions: a 30-turn whole trajectory of the tiny model is 5,823 tokens
with full lists and 3,850 with deltas (benchmarks/rollout.py), so with full lists episodes pass
the default 4,096-token prompt budget after ~20 turns and end truncated. The default is
therefore "delta" (RolloutConfig.admissible_in_continuation); the first message always carries
the full list, and "full" stays available. Only full-chat prompts use continuations at all.

It carries the same information as the reference prompt but is worded for this project, and it
splits rules (system) from state (user) so that a skill-bearing teacher context can be added as
another system message without touching the task text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sdar_core.envs.base import EpisodeHistory
from sdar_core.envs.prompting import format_history, squash, state_parts
from sdar_core.errors import SdarError

__all__ = [
    "ADMISSIBLE_FORMS",
    "SYSTEM_PROMPT",
    "admissible_delta",
    "apply_admissible_delta",
    "build_continuation",
    "build_messages",
    "format_history",
    "parse_admissible_line",
]

ADMISSIBLE_FORMS = ("full", "delta")
_DELTA_HEAD = "Admissible actions now:"
_FULL_HEAD = "Admissible actions:"
_DELTA_PATTERN = re.compile(
    r"Admissible actions now: (?:unchanged|"
    r"(?:\+\[(?P<added>[^\]]*)\])? ?(?:-\[(?P<removed>[^\]]*)\])?)"
)

SYSTEM_PROMPT = (
    "You are an agent acting in a household simulated as text (ALFWorld). You reach the goal by "
    "choosing one command per step from the admissible actions listed for you.\n"
    "First reason briefly about the situation inside <think> </think> tags. Then give exactly one "
    "admissible action inside <action> </action> tags, for example:\n"
    "<think>The mug may be in a cabinet; cabinet 1 is unexplored.</think>"
    "<action>go to cabinet 1</action>"
)


def build_messages(
    history: EpisodeHistory, admissible: Sequence[str], *, history_length: int
) -> list[dict[str, str]]:
    """Chat messages asking for the next step of one episode."""
    parts = state_parts(history, history_length=history_length)
    parts.append(_admissible_line(admissible))
    parts.append(
        "Think inside <think> </think>, then answer with one action inside <action> </action>."
    )
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "\n\n".join(parts)},
    ]


def _quoted(actions: Sequence[str]) -> str:
    return "[" + ", ".join(f"'{a}'" for a in actions) + "]"


def _admissible_line(admissible: Sequence[str]) -> str:
    return f"{_FULL_HEAD} {_quoted(admissible)}"


def apply_admissible_delta(
    previous: Sequence[str], *, added: Sequence[str], removed: Sequence[str]
) -> list[str]:
    """The list a delta message stands for: sorted(previous - removed + added)."""
    return sorted((set(previous) - set(removed)) | set(added))


def admissible_delta(
    previous: Sequence[str], current: Sequence[str]
) -> tuple[list[str], list[str]] | None:
    """(added, removed) such that `apply_admissible_delta` gives `current` back exactly, or None
    where no delta does (see the module docstring)."""
    if any(c in a for a in (*previous, *current) for c in "'[]"):
        return None
    before, now = set(previous), set(current)
    added, removed = sorted(now - before), sorted(before - now)
    if apply_admissible_delta(previous, added=added, removed=removed) != list(current):
        return None
    return added, removed


def _delta_line(previous: Sequence[str], admissible: Sequence[str]) -> str:
    delta = admissible_delta(previous, admissible)
    if delta is None:
        return _admissible_line(admissible)
    added, removed = delta
    parts = [f"+{_quoted(added)}"] if added else []
    parts += [f"-{_quoted(removed)}"] if removed else []
    return f"{_DELTA_HEAD} {' '.join(parts) or 'unchanged'}"


def _split_quoted(inner: str) -> list[str]:
    """['a', 'b'] (without its brackets) as a list; actions hold no quote (see admissible_delta)."""
    return [] if not inner else inner[1:-1].split("', '")


def parse_admissible_line(line: str, previous: Sequence[str]) -> list[str]:
    """The admissible list a continuation's line stands for, given the previous list."""
    if line.startswith(_FULL_HEAD):
        return _split_quoted(line[len(_FULL_HEAD) :].strip()[1:-1])
    match = _DELTA_PATTERN.fullmatch(line)
    if match is None:
        raise SdarError(f"not an admissible-actions line: {line[:60]!r}")
    added, removed = (_split_quoted(part or "") for part in match.group("added", "removed"))
    return apply_admissible_delta(previous, added=added, removed=removed)


def build_continuation(
    history: EpisodeHistory,
    admissible: Sequence[str],
    *,
    previous_admissible: Sequence[str] | None = None,
) -> dict[str, str]:
    """The user message that continues a full-chat conversation after the episode's last action.

    Only what is new since that action: the observation it produced and the admissible actions
    now (the task, the rules and the earlier steps are already in the conversation). With
    `previous_admissible` (the list the previous message showed), the actions are given as a
    change from it where that is exact (the "delta" form), else in full.
    """
    if not history.turns:
        raise SdarError(
            "build_continuation needs an episode that has acted: start the conversation with "
            "build_messages(history, admissible, history_length=0)"
        )
    steps_done = len(history.turns)
    observation = squash(history.turns[-1].observation)
    content = f"Now, at step {steps_done + 1}, you observe: {observation}"
    if previous_admissible is None:
        line = _admissible_line(admissible)
    else:
        line = _delta_line(previous_admissible, admissible)
    return {"role": "user", "content": f"{content}\n\n{line}"}
