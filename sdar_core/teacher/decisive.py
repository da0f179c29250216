"""The teacher - student gap on decisive tokens, per outcome: where the skills' knowledge shows.

A per-token mean hides the teacher's knowledge: in the miniature the gap is within ±0.0004 on
most tokens and concentrates on the few that name a receptacle or an object (which cabinet to
open, which object to take). Those are the decisive tokens: the response tokens that fall inside
the argument words of an action, i.e. the words of the command that are not the fixed words of
the env's command grammar (ALFWorld: `go to {receptacle}`, `take {object} from {receptacle}`,
`move {object} to {receptacle}`, `open/close {receptacle}`, `heat/cool/clean/slice {object} with
{receptacle}`, `use {object}`, `examine {thing}`, `look`, `inventory`).

Teacher-stage metrics (logged as `teacher/gap_decisive/...`):
- `won_mean`, `lost_mean`: mean gap (teacher - student log-prob, nats) over decisive tokens of
  won / lost episodes, with `won_tokens`, `lost_tokens`;
- `lost_share_ge1nat` (and `won_share_ge1nat`): the share of lost (won) episodes holding at least
  one decisive token that the teacher endorses by >= 1 nat: lost episodes that contain a right
  decision SDAR can credit while GRPO pushes it down with the rest of the episode.
Envs without a grammar here (WebShop, Search-QA) report none of these.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

__all__ = ["DECISIVE_GRAMMARS", "decisive_mask", "decisive_summary", "token_pieces"]

ENDORSE_NATS = 1.0
_ACTION = re.compile(r"<action>(.*?)</action>", re.IGNORECASE | re.DOTALL)
_WORD = re.compile(r"\S+")
# env -> the fixed words of its command templates; every other word of an action is an argument
DECISIVE_GRAMMARS: dict[str, frozenset[str]] = {
    "alfworld": frozenset(
        "go to open close take from move put in on in/on into onto use heat cool clean slice "
        "with examine look inventory toggle help".split()
    ),
}


def token_pieces(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    """The text of each token, such that their concatenation is the decoded sequence: token by
    token where that holds (ASCII text), else by decoding growing prefixes."""
    ids = list(ids)
    pieces = [tokenizer.decode([i]) for i in ids]
    if "".join(pieces) == tokenizer.decode(ids):
        return pieces
    out, previous = [], ""
    for n in range(1, len(ids) + 1):
        text = tokenizer.decode(ids[:n])
        # a character split over tokens decodes as U+FFFD until its last byte: it belongs to
        # the token that completes it
        stable = text if n == len(ids) else text.rstrip("\ufffd")
        if not stable.startswith(previous):
            stable = previous
        out.append(stable[len(previous) :])
        previous = stable
    return out


def decisive_mask(pieces: Sequence[str], grammar: frozenset[str]) -> list[bool]:
    """Per token: does it overlap an argument word of an `<action>` block (module docstring)?"""
    text = "".join(pieces)
    spans = []
    for action in _ACTION.finditer(text):
        for word in _WORD.finditer(action.group(1)):
            if word.group().lower() not in grammar:
                start = action.start(1) + word.start()
                spans.append((start, start + len(word.group())))
    mask, position = [], 0
    for piece in pieces:
        end = position + len(piece)
        mask.append(any(s < end and position < e for s, e in spans) and bool(piece.strip()))
        position = end
    return mask


def decisive_summary(rows: Any, teacher: Sequence[Sequence[float]], tokenizer: Any) -> dict:
    """{"gap_decisive": {...}} for an env with a grammar (module docstring), else {}."""
    grammar = DECISIVE_GRAMMARS.get(rows["env_name"][0]) if len(rows["env_name"]) else None
    if grammar is None:
        return {}
    gaps: dict[bool, list[float]] = {True: [], False: []}
    endorsed: dict[tuple[str, int], bool] = {}  # episode -> holds a token endorsed >= 1 nat
    won_of: dict[tuple[str, int], bool] = {}
    columns = ("response_ids", "response_mask", "old_logprobs", "won", "group_id", "member")
    for t_row, (ids, mask, student, won, group, member) in zip(
        teacher, zip(*(rows[c] for c in columns), strict=True), strict=True
    ):
        episode = (group, int(member))
        won_of[episode] = bool(won)
        endorsed.setdefault(episode, False)
        decisive = decisive_mask(token_pieces(tokenizer, ids), grammar)
        for t, s, m, d in zip(t_row, student, mask, decisive, strict=True):
            if m and d:
                gaps[bool(won)].append(t - s)
                endorsed[episode] |= t - s >= ENDORSE_NATS
    out: dict[str, float] = {}
    for won, name in ((True, "won"), (False, "lost")):
        values = gaps[won]
        episodes = [e for e, w in won_of.items() if w == won]
        out[f"{name}_tokens"] = float(len(values))
        out[f"{name}_episodes"] = float(len(episodes))
        if values:
            out[f"{name}_mean"] = sum(values) / len(values)
        if episodes:
            out[f"{name}_share_ge1nat"] = sum(endorsed[e] for e in episodes) / len(episodes)
    return {"gap_decisive": out}
