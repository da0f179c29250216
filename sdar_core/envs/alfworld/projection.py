"""Turn raw model text into an ALFWorld command (the projection). Never raises.

The model is asked for `<think>…</think><action>…</action>`. We take the content of the LAST
complete `<action>…</action>` pair: models that restate an earlier, abandoned choice inside their
reasoning put the decision they settle on at the end. (The reference takes the first pair; with a
single pair, as in well-formed output, both agree.) Tags match case-insensitively.

The command is stripped, lower-cased and its whitespace collapsed. alfworld 0.4.2 spells placing an
object `move X to Y`, while older prompts and data say `put X in/on Y`; when the `put` form is not
itself admissible it is rewritten to the `move` form.

A step is flagged invalid (for the trainer's invalid-action penalty) when the text has no complete
action block, when `require_think` is on and it has no complete `<think>…</think>` block (as the
reference does), or when the command is not among the admissible ones. The command is still sent
to the engine in the last two cases: the reference executes it too, and an inadmissible command
simply answers "Nothing happens.". Text over `tags.MAX_MODEL_TEXT_CHARS` is not parsed
("too_long"); tags are found in linear time (`sdar_core.envs.tags`).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from sdar_core.envs.tags import all_blocks, first_block, too_long

__all__ = ["Projection", "project_action"]

_PUT = re.compile(r"^put (?P<obj>.+?) (?:in/on|into|onto|in|on) (?P<recep>.+)$")


@dataclass(frozen=True)
class Projection:
    """The result of projecting one model text.

    `action` is the command to send (None when the text held no action block); `invalid_reason`
    is None for a valid step, else one of "no_action", "no_think", "not_admissible", "too_long".
    """

    action: str | None
    invalid_reason: str | None

    @property
    def invalid(self) -> bool:
        return self.invalid_reason is not None


def _normalise(command: str) -> str:
    return " ".join(command.split()).lower()


def _to_move(command: str, admissible: Collection[str]) -> str:
    match = _PUT.match(command)
    if match is None or command in admissible:
        return command
    return f"move {match['obj']} to {match['recep']}"


def project_action(
    text: object, admissible: Collection[str], *, require_think: bool = True
) -> Projection:
    """Project `text` onto a command and say whether the step is valid. Never raises."""
    if not isinstance(text, str):
        return Projection(None, "no_action")
    if too_long(text):
        return Projection(None, "too_long")
    actions = all_blocks(text, "action")
    if not actions:
        return Projection(None, "no_action")
    command = _to_move(_normalise(actions[-1]), admissible)
    if require_think and first_block(text, "think") is None:
        return Projection(command, "no_think")
    if command not in admissible:
        return Projection(command, "not_admissible")
    return Projection(command, None)
