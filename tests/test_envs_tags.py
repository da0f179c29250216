"""The three action parsers read model text in linear time and refuse runaway text.

The time bound: at the length cap (32,768 characters) of unclosed tags, the lazy regexes these
parsers used took 0.64 s per call on 2 cores (9-10 s at 100k characters); the linear scan takes
about 0.1 ms. A bound of 5 ms per call is missed by a quadratic parser by more than 100x and
leaves the linear one 50x of headroom; the best of 3 calls is timed, so that one call preempted
on a busy machine does not fail the test (a quadratic parser is slow every time).
"""

import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdar_core.envs.alfworld.projection import project_action as alfworld_project
from sdar_core.envs.search.projection import project_action as search_project
from sdar_core.envs.tags import MAX_MODEL_TEXT_CHARS, all_blocks, first_block
from sdar_core.envs.webshop.projection import project_action as webshop_project

BOUND_S = 0.005
PARSERS = {
    "alfworld": lambda text: alfworld_project(text, {"look"}),
    "webshop": lambda text: webshop_project(text, {"buy now"}, has_search_bar=True),
    "search": lambda text: search_project(text, require_think=True),
}
TAGS = ("<action>", "<think>", "<search>", "<answer>", "<ACTION>", "<Think>", "</action>")


@st.composite
def long_unclosed(draw) -> str:
    tag = draw(st.sampled_from(TAGS))
    filler = draw(st.text(alphabet="ab <>/", max_size=8))
    head = draw(st.text(max_size=40))
    unit = tag + filler
    n = (MAX_MODEL_TEXT_CHARS - len(head)) // len(unit)
    return (head + unit * n)[:MAX_MODEL_TEXT_CHARS]


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=long_unclosed())
def test_parsers_are_linear_on_long_unclosed_tags(name, text):
    parse = PARSERS[name]
    seconds = []
    for _ in range(3):  # the best of 3, so that a preempted call on a busy machine does not count
        started = time.perf_counter()
        parse(text)
        seconds.append(time.perf_counter() - started)
    assert min(seconds) < BOUND_S


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_text_over_the_cap_is_refused_unparsed(name):
    text = "<action>look</action><search>q</search>" + "x" * MAX_MODEL_TEXT_CHARS
    assert PARSERS[name](text).invalid_reason == "too_long"


_pieces = st.sampled_from(["<action>", "</action>", "<ACTION>", "</Action>", "a", " ", "<", ">"])


@settings(max_examples=300, deadline=None)
@given(st.lists(_pieces, max_size=30).map("".join))
def test_blocks_are_what_the_lazy_regex_finds(text):
    regex = re.compile(r"<action>(.*?)</action>", re.IGNORECASE | re.DOTALL)
    assert all_blocks(text, "action") == regex.findall(text)
    found = regex.search(text)
    assert first_block(text, "action") == (None if found is None else found.group(1))
