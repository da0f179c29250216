"""Turn raw model text into a WebShop action (the projection). Never raises.

The model is asked for `<think>…</think><action>search[…]</action>` or `…<action>click[…]</action>`.
As for ALFWorld, the content of the LAST complete `<action>…</action>` pair is taken (tags match
case-insensitively). The action is normalised to `search[keywords]` / `click[value]` with the
argument's whitespace collapsed and lower-cased (the reference lower-cases arguments too, and its
clickables are lower case).

A step is flagged invalid (for the trainer's invalid-action penalty) when there is no complete
action block ("no_action"), when `require_think` is on and there is no complete `<think>` block
("no_think"), when the action is not of the form `search[…]` / `click[…]` ("malformed"), or when
it is not available on the current page — a search away from the search page, an empty search,
or a click on something the page does not offer ("not_available"). As in the reference, actions
that are well-formed but unavailable are still passed to the site, which ignores them. Text over
`tags.MAX_MODEL_TEXT_CHARS` is not parsed ("too_long"); tags are found in linear time
(`sdar_core.envs.tags`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sdar_core.envs.tags import all_blocks, first_block, too_long
from sdar_core.envs.webshop.pages import parse_action

__all__ = ["Projection", "project_action"]


@dataclass(frozen=True)
class Projection:
    """`action` is the normalised action (None when the text held none that parses);
    `invalid_reason` is None for a valid step, else "no_action", "no_think", "malformed",
    "not_available" or "too_long"."""

    action: str | None
    invalid_reason: str | None

    @property
    def invalid(self) -> bool:
        return self.invalid_reason is not None


def _available(verb: str, arg: str, clickables: Collection[str], has_search_bar: bool) -> bool:
    if verb == "search":
        return has_search_bar and bool(arg)
    return arg in clickables


def project_action(
    text: object,
    clickables: Collection[str],
    *,
    has_search_bar: bool,
    require_think: bool = True,
) -> Projection:
    """Project `text` onto an action and say whether the step is valid. Never raises."""
    if not isinstance(text, str):
        return Projection(None, "no_action")
    if too_long(text):
        return Projection(None, "too_long")
    blocks = all_blocks(text, "action")
    if not blocks:
        return Projection(None, "no_action")
    parsed = parse_action(blocks[-1])
    if parsed is None:
        return Projection(None, "malformed")
    verb, arg = parsed
    action = f"{verb}[{arg}]"
    if require_think and first_block(text, "think") is None:
        return Projection(action, "no_think")
    if not _available(verb, arg, clickables, has_search_bar):
        return Projection(action, "not_available")
    return Projection(action, None)
