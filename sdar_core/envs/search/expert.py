"""An oracle searcher for Search-QA: it knows the gold documents and the gold answer.

For each gold document of the question, in order (for a multi-hop question: the bridge first), it
searches for that document's title, then it answers with the first gold answer. A question without
gold documents (foreign data) gets one search with the question itself. It emits model-style text,
`<think>...</think><search>...</search>` then `<think>...</think><answer>...</answer>`, so its
episodes serve as warm-start data and as an upper bound on exact match (it is not a model: it never
reads the results; a gold document the retriever misses still costs it nothing, which is why the
tests check that the retriever ranks the gold documents in the top k). `RandomSearcher` is the
random baseline: random question words as queries, random spans of what it read as answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sdar_core.envs.base import StepRecord
from sdar_core.retrieval import Document, read_corpus, title_and_text

__all__ = ["OracleSearcher", "RandomSearcher", "format_text"]


def format_text(thought: str, tag: str, content: str) -> str:
    """Model-style output for one step: a thought, then a search or an answer."""
    return f"<think>{thought}</think><{tag}>{content}</{tag}>"


class OracleSearcher:
    """A policy: `policy(records) -> texts`, one per episode (finished ones get "")."""

    def __init__(self, documents: Iterable[Document]) -> None:
        self._titles: Mapping[str, str] = {
            d.id: title_and_text(d.contents)[0].strip('"') for d in documents
        }

    @classmethod
    def from_corpus(cls, path=None) -> OracleSearcher:
        """The oracle over a corpus file (default: the shipped corpus)."""
        from sdar_core.envs.search.data import SHIPPED_DIR

        return cls(read_corpus(path or SHIPPED_DIR / "corpus.jsonl"))

    def act(self, info: Mapping[str, object]) -> str:
        """The text for the next step of one episode, from its latest info."""
        gold_docs: Sequence[str] = info.get("gold_doc_ids") or ()
        queries = [self._titles[d] for d in gold_docs if d in self._titles]
        if not queries:
            queries = [str(info["task_text"])]
        step = int(info["step"])
        if step < len(queries):
            thought = (
                f"I need the document about {queries[step]}."
                if step == 0
                else f"That gives me the next link; now I need {queries[step]}."
            )
            return format_text(thought, "search", queries[step])
        answer = str(list(info["golden_answers"])[0])
        return format_text(f"The documents I found say the answer is {answer}.", "answer", answer)

    def __call__(self, records: Sequence[StepRecord]) -> list[str]:
        return ["" if r.done else self.act(r.info) for r in records]


class RandomSearcher:
    """The random baseline: each turn, with equal chance, a search for up to three random words of
    the question, or an answer of one to three consecutive words drawn from the latest
    observation (the retrieved documents after a search, the question before one). Seeded by
    (seed, episode seed, step) only, so choices do not depend on batch size or position."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def act(self, observation: str, info: Mapping[str, object]) -> str:
        """The text for the next step of one episode."""
        import numpy as np

        key = [self.seed, int(info.get("episode_seed", 0)), int(info["step"])]
        rng = np.random.default_rng(key)
        if rng.random() < 0.5:
            words = _words(str(info["task_text"])) or ["answer"]
            picked = rng.choice(words, size=min(3, len(words)), replace=False)
            return format_text("I search at random.", "search", " ".join(picked))
        words = _words(observation) or _words(str(info["task_text"])) or ["unknown"]
        length = int(rng.integers(1, 4))
        start = int(rng.integers(max(1, len(words) - length + 1)))
        return format_text("I answer at random.", "answer", " ".join(words[start : start + length]))

    def __call__(self, records: Sequence[StepRecord]) -> list[str]:
        return ["" if r.done else self.act(r.observation, r.info) for r in records]


def _words(text: str) -> list[str]:
    """Alphanumeric words of a text (tags and punctuation dropped)."""
    import re

    return re.findall(r"[A-Za-z0-9]+", re.sub(r"<[^>]*>", " ", text))
