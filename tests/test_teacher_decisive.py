"""The teacher gap on decisive tokens (sdar_core.teacher.decisive): which tokens name a receptacle
or an object, and the per-outcome figures on small hand-made rows."""

import pytest

from sdar_core.teacher.decisive import (
    DECISIVE_GRAMMARS,
    decisive_mask,
    decisive_summary,
    token_pieces,
)

ALFWORLD = DECISIVE_GRAMMARS["alfworld"]


class WordTokenizer:
    """Token i is PIECES[i]; decoding joins them."""

    PIECES = ["<think>", "find", " it", "</think>", "<action>", "go", " to", " cabinet", " 2",
              "</action>", "take", " apple", " 1", " from", " table", " 1", "look"]  # fmt: skip

    def decode(self, ids):
        return "".join(self.PIECES[i] for i in ids)


def test_decisive_tokens_are_the_argument_words_of_actions():
    pieces = ["<think>", "go to", " cabinet 2", "</think>", "<action>", "go", " to", " cab",
              "inet", " 2", "</action>"]  # fmt: skip
    # the thought mentions the cabinet too, but only the action decides
    assert decisive_mask(pieces, ALFWORLD) == [False] * 7 + [True, True, True, False]
    take = ["<action>", "take", " apple", " 1", " from", " table", " 1", "</action>"]
    assert decisive_mask(take, ALFWORLD) == [False, False, True, True, False, True, True, False]
    assert not any(decisive_mask(["<action>", "look", "</action>"], ALFWORLD))
    assert not any(decisive_mask(["go", " to", " cabinet", " 2"], ALFWORLD))  # no action block


def test_decisive_summary_per_outcome_and_episode():
    go = [4, 5, 6, 7, 8, 9]  # <action>go to cabinet 2</action>: decisive at positions 3, 4
    rows = {
        "env_name": ["alfworld"] * 3,
        "response_ids": [go, go, go],
        "response_mask": [[1] * 6, [1] * 6, [1, 1, 1, 1, 0, 1]],
        "old_logprobs": [[-1.0] * 6] * 3,
        "won": [True, False, False],
        "group_id": ["g", "g", "g"],
        "member": [0, 1, 2],
    }
    teacher = [
        [-1.0, -1.0, -1.0, -0.5, -0.3, -9.0],  # won: decisive gaps 0.5, 0.7
        [-1.0, -1.0, -1.0, 0.0, -1.2, -1.0],  # lost: gaps 1.0 (endorsed), -0.2
        [-1.0, -1.0, -1.0, -0.9, 5.0, -1.0],  # lost: gap 0.1; the 6.0 is masked out
    ]
    got = decisive_summary(rows, teacher, WordTokenizer())["gap_decisive"]
    assert got["won_mean"] == pytest.approx(0.6) and got["won_tokens"] == 2
    assert got["lost_mean"] == pytest.approx((1.0 - 0.2 + 0.1) / 3) and got["lost_tokens"] == 3
    assert got["lost_share_ge1nat"] == 0.5 and got["won_share_ge1nat"] == 0.0
    assert got["lost_episodes"] == 2
    assert decisive_summary(rows | {"env_name": ["webshop"] * 3}, teacher, WordTokenizer()) == {}


@pytest.mark.transformers
def test_token_pieces_concatenate_to_the_decoded_text(tiny_model_dir):
    from sdar_core.models import load_tokenizer

    tokenizer = load_tokenizer(tiny_model_dir)
    for text in ("<action>go to cabinet 2</action>", "caf\u00e9 <action>take mug 1</action>"):
        ids = tokenizer.encode(text, add_special_tokens=False)
        pieces = token_pieces(tokenizer, ids)
        assert len(pieces) == len(ids) and "".join(pieces) == tokenizer.decode(ids)
        mask = decisive_mask(pieces, ALFWORLD)
        named = "".join(p for p, m in zip(pieces, mask, strict=True) if m)
        # the argument words' tokens, and nothing else (a bare space token is not decisive)
        assert "".join(named.split()) == ("cabinet2" if "cabinet" in text else "mug1")
