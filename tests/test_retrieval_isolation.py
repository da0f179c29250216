"""One runaway query never fails the other episodes of a Search-QA batch."""

import pytest

from sdar_core.envs import make
from sdar_core.envs.search import SHIPPED_DIR
from sdar_core.retrieval import (
    Bm25Index,
    RetrievalClient,
    RetrievalRejected,
    ServerConfig,
    create_app,
    read_corpus,
    retrieve_each,
    serving,
)

LONG = "where was alda reyvin born " * 120  # about 3,200 characters


@pytest.fixture(scope="module")
def index():
    return Bm25Index(read_corpus(SHIPPED_DIR / "corpus.jsonl"))


def test_the_client_cuts_a_long_query_to_its_documented_limit(index):
    with serving(create_app(index)) as url, RetrievalClient(f"{url}/retrieve") as client:
        long_hits, short_hits = client.retrieve([LONG, "Myrrow"], topk=3)
        cut_hits = client.retrieve([LONG[: client.max_query_chars]], topk=3)[0]
    assert client.max_query_chars == 2000 == ServerConfig().max_query_chars
    assert [h.document for h in long_hits] == [h.document for h in cut_hits]
    assert len(short_hits) == 3


def test_a_rejected_query_fails_alone(index):
    strict = create_app(index, ServerConfig(max_query_chars=100))
    with serving(strict) as url, RetrievalClient(f"{url}/retrieve") as client:
        results = retrieve_each(client, ["Myrrow", LONG, "Brellin Works founder"], topk=2)
    assert isinstance(results[1], RetrievalRejected) and "max_query_chars=100" in str(results[1])
    assert len(results[0]) == 2 and len(results[2]) == 2


def test_a_rejected_search_ends_only_the_episode_that_sent_it(index):
    strict = create_app(index, ServerConfig(max_query_chars=100))
    with serving(strict) as url:
        env = make("search", retrieval_url=f"{url}/retrieve", split="test", retries=0)
        env.reset(task_ids=list(env.task_ids[:3]))
        long, short, other = env.step(
            [f"<search>{LONG}</search>", "<search>Myrrow</search>", "<search>Brellin</search>"]
        )
        env.close()
    assert long.done and long.info["truncated"] and "max_query_chars" in long.info["error"]
    for record in (short, other):
        assert not record.done and record.info["error"] is None
        assert record.observation.startswith("<information>")
