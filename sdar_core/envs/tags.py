"""Linear-time tag blocks in model text, shared by the three action parsers (projections).

A lazy regex such as `<action>(.*?)</action>` restarts its scan at every opening tag, so text with
many unclosed tags costs O(n^2): 100k characters of `<action>` took 9-10 s per parse on 2 cores.
Here each tag is found with a literal (case-insensitive) search that starts where the previous one
ended, so a parse reads the text once. The blocks returned are exactly what
`re.search(r"<tag>(.*?)</tag>", re.I | re.S)` (first block) and `re.findall` (every block, left to
right, non-overlapping) return; `tests/test_envs_tags.py` checks that equivalence.

`MAX_MODEL_TEXT_CHARS` caps the model text a parser reads at all: a step whose text is longer is
flagged invalid ("too_long") without being parsed. 32,768 characters is far above what any
response of `max_new_tokens` <= 4096 holds in practice, so only runaway text is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache

__all__ = ["MAX_MODEL_TEXT_CHARS", "all_blocks", "first_block", "too_long"]

MAX_MODEL_TEXT_CHARS = 32_768


@cache
def _tag_patterns(tag: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    return (
        re.compile(re.escape(f"<{tag}>"), re.IGNORECASE),
        re.compile(re.escape(f"</{tag}>"), re.IGNORECASE),
    )


def _blocks(text: str, tag: str) -> Iterator[str]:
    opening, closing = _tag_patterns(tag)
    pos = 0
    while (start := opening.search(text, pos)) is not None:
        end = closing.search(text, start.end())
        if end is None:  # no later opening tag can be closed either
            return
        yield text[start.end() : end.start()]
        pos = end.end()


def first_block(text: str, tag: str) -> str | None:
    """The content of the first complete `<tag>...</tag>` block, or None."""
    return next(_blocks(text, tag), None)


def all_blocks(text: str, tag: str) -> list[str]:
    """The contents of every complete `<tag>...</tag>` block, left to right."""
    return list(_blocks(text, tag))


def too_long(text: str) -> bool:
    """Whether `text` is over the parsers' length cap (module docstring)."""
    return len(text) > MAX_MODEL_TEXT_CHARS
