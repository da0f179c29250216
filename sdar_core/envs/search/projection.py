"""Turn raw model text into a Search-QA action: a search query or a final answer. Never raises.

The model writes `<search>query</search>` to search or `<answer>text</answer>` to answer (tags match
case-insensitively). Like Search-R1 and the reference's projection, the FIRST complete block is the
action: generation is stopped at the first closing tag in Search-R1, so later text is not part of
the decision. A search block is preferred to an answer block when both are complete, as in the
reference. Query and answer are stripped and their whitespace collapsed.

A step is flagged invalid (for the trainer's invalid-action penalty) when there is no complete
block ("no_action"), when the block is empty ("empty"), when the text holds both kinds of tag or
one kind more than once ("ambiguous", as the reference does; the first block is still used), or,
with `require_think`, when there is no `<think>...</think>` block ("no_think"; off by default, as
Search-R1 does not require it). Text over `tags.MAX_MODEL_TEXT_CHARS` is not parsed
("too_long"); tags are found in linear time (`sdar_core.envs.tags`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from sdar_core.envs.tags import first_block, too_long

__all__ = ["SearchAction", "project_action"]

_SEARCH_TAG = re.compile(r"<search>", re.IGNORECASE)
_ANSWER_TAG = re.compile(r"<answer>", re.IGNORECASE)


@dataclass(frozen=True)
class SearchAction:
    """The projection of one model text.

    `kind` is "search", "answer" or None (no usable block); `content` the query or answer text
    (None with kind None); `invalid_reason` None for a valid step, else one of "no_action",
    "empty", "ambiguous", "no_think", "too_long".
    """

    kind: Literal["search", "answer"] | None
    content: str | None
    invalid_reason: str | None

    @property
    def invalid(self) -> bool:
        return self.invalid_reason is not None

    @property
    def action(self) -> str | None:
        """The action as a string (`search[q]` / `answer[a]`), None without one."""
        return None if self.kind is None else f"{self.kind}[{self.content}]"


def _first_block(text: str) -> tuple[Literal["search", "answer"], str] | None:
    search = first_block(text, "search")
    if search is not None:
        return "search", search
    answer = first_block(text, "answer")
    if answer is not None:
        return "answer", answer
    return None


def project_action(text: object, *, require_think: bool = False) -> SearchAction:
    """Project `text` onto a search or an answer and say whether the step is valid."""
    if not isinstance(text, str):
        return SearchAction(None, None, "no_action")
    if too_long(text):
        return SearchAction(None, None, "too_long")
    block = _first_block(text)
    if block is None:
        return SearchAction(None, None, "no_action")
    kind, raw = block
    content = " ".join(raw.split())
    if not content:
        return SearchAction(None, None, "empty")
    n_search, n_answer = len(_SEARCH_TAG.findall(text)), len(_ANSWER_TAG.findall(text))
    if (n_search and n_answer) or n_search > 1 or n_answer > 1:
        return SearchAction(kind, content, "ambiguous")
    if require_think and first_block(text, "think") is None:
        return SearchAction(kind, content, "no_think")
    return SearchAction(kind, content, None)
