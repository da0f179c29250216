"""Search-QA as a `BatchEnv`: questions from Search-R1 parquet files, documents from a retriever.

Each step the model text is projected onto `<search>q</search>` or `<answer>a</answer>`
(`projection.py`). A search returns the top `topk` documents as `<information>Doc 1(Title: ...) ...
</information>`; every search of a batch step goes to the retriever in ONE request (a server
round trip per batch, not per episode). An answer ends the episode with reward `win_reward` x exact
match; `info["won"]` is the exact match. Text with no usable block is flagged invalid and answered
with a reminder of the format; the episode goes on. A retrieval failure (server down after its
retries) ends only the episodes that searched in that step, with `info["error"]` naming the URL;
a query the server rejects (e.g. over its length limit) ends only the episode that sent it
(`retrieval.client.retrieve_each`; the client also cuts queries to its `max_query_chars`).

Info per step, besides the base keys: `data_source`, `question_type`, `golden_answers`,
`gold_doc_ids` (for the oracle and evaluation), `action` (`search[q]` / `answer[a]` / None),
`invalid_reason`, `answer` (None until answered) and `em` (0.0 until answered). `task_type` is
the data source, so per-task-type tables are the paper's per-dataset columns.

An answer ends the episode even when it is wrong (`StepOutcome.ended`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sdar_core.envs.base import BatchEnv, EpisodeHistory, EpisodeStart, StepOutcome, StepRecord
from sdar_core.envs.search.config import SearchConfig
from sdar_core.envs.search.data import SHIPPED_DIR, QAExample, read_qa
from sdar_core.envs.search.projection import SearchAction, project_action
from sdar_core.envs.search.prompts import INVALID_FEEDBACK, build_messages, format_information
from sdar_core.envs.search.reward import exact_match
from sdar_core.errors import ArtifactError, ConfigError

__all__ = ["SHIPPED_DIR", "SearchEnv", "load_examples", "make_retriever"]


def load_examples(config: SearchConfig) -> dict[str, QAExample]:
    """Task id ("<file stem>/<row id>") -> example, for every question the config selects."""
    files = config.qa_files(SHIPPED_DIR)
    if not files:
        raise ArtifactError(f"no .parquet files under {config.data or config.data_dir}")
    examples: dict[str, QAExample] = {}
    for path in files:
        for example in read_qa(path):
            task_id = f"{path.stem}/{example.id}"
            if task_id in examples:
                raise ArtifactError(f"{path}: duplicate id {example.id!r}: ids must be unique")
            examples[task_id] = example
    if config.data_sources is not None:
        examples = {k: v for k, v in examples.items() if v.data_source in config.data_sources}
        if not examples:
            raise ConfigError(
                f"no question has a data source in {list(config.data_sources)}: check the names "
                f"(e.g. nq, hotpotqa) or set data_sources=None"
            )
    return examples


def make_retriever(config: SearchConfig):
    """A `RetrievalClient` for `retrieval_url`, else an in-process `LocalRetriever`."""
    from sdar_core.retrieval import LocalRetriever, RetrievalClient

    if config.retrieval_url is not None:
        return RetrievalClient(
            config.retrieval_url, timeout_s=config.timeout_s, retries=config.retries
        )
    return LocalRetriever.from_corpus(config.corpus or SHIPPED_DIR / "corpus.jsonl")


class SearchEnv(BatchEnv):
    """A batch of Search-QA episodes; see the module docstring."""

    name = "search"

    def __init__(self, config: SearchConfig, retriever: Any = None) -> None:
        super().__init__(max_steps=config.max_steps, seed=config.seed)
        self.config = config
        self._examples = load_examples(config)
        self._task_ids = tuple(sorted(self._examples))
        self._retriever = retriever if retriever is not None else make_retriever(config)
        self._slots: dict[int, QAExample] = {}

        self._pending: dict[int, tuple[SearchAction, Any]] = {}

    @property
    def task_ids(self) -> tuple[str, ...]:
        return self._task_ids

    def example(self, task_id: str) -> QAExample:
        """The question, gold answers and gold documents of one task."""
        return self._examples[task_id]

    def _task_type(self, task_id: str) -> str:
        return self._examples[task_id].data_source

    def _extra(self, example: QAExample, action: SearchAction | None) -> dict[str, Any]:
        return {
            "data_source": example.data_source,
            "question_type": example.question_type,
            "golden_answers": list(example.golden_answers),
            "gold_doc_ids": list(example.gold_doc_ids),
            "action": None if action is None else action.action,
            "invalid_reason": None if action is None else action.invalid_reason,
            "answer": None,
            "em": 0.0,
        }

    def _start(self, slot: int, task_id: str, seed: int) -> EpisodeStart:
        example = self._examples[task_id]
        self._slots[slot] = example
        return EpisodeStart(
            observation=f"Question: {example.question}",
            task_type=self._task_type(task_id),
            task_text=example.question,
            extra=self._extra(example, None),
        )

    def step(self, texts: Sequence[str]) -> list[StepRecord]:
        """Project every text, send all searches of the batch in one request, then step."""
        if len(texts) == self.batch_size:
            self._prefetch(texts)
        try:
            return super().step(texts)
        finally:
            self._pending = {}

    def _prefetch(self, texts: Sequence[str]) -> None:
        actions = {
            slot: project_action(text, require_think=self.config.require_think)
            for slot, (record, text) in enumerate(zip(self.records(), texts, strict=True))
            if not record.done
        }
        searching = [slot for slot, a in actions.items() if a.kind == "search"]
        from sdar_core.retrieval.client import retrieve_each

        queries = [actions[slot].content for slot in searching]
        results = retrieve_each(self._retriever, queries, topk=self.config.topk)
        self._pending = {slot: (action, None) for slot, action in actions.items()}
        self._pending |= {
            slot: (actions[slot], r) for slot, r in zip(searching, results, strict=True)
        }

    def _advance(self, slot: int, text: str) -> StepOutcome:
        example = self._slots[slot]
        action, result = self._pending.pop(slot, (None, None))
        if action is None:  # called outside `step`: project and search for this episode alone
            action = project_action(text, require_think=self.config.require_think)
            if action.kind == "search":
                result = self._retriever.retrieve([action.content], topk=self.config.topk)[0]
        extra = self._extra(example, action)
        if action.kind == "search":
            if isinstance(result, BaseException):
                raise result
            return StepOutcome(
                format_information(result), action.action, 0.0, False, action.invalid, extra
            )
        if action.kind == "answer":
            em = exact_match(action.content, example.golden_answers)
            extra |= {"answer": action.content, "em": em}
            return StepOutcome(
                f"Answer given: {action.content}",
                action.action,
                self.config.win_reward * em,
                em == 1.0,
                action.invalid,
                extra,
                ended=True,  # a wrong answer ends the episode too
            )
        return StepOutcome(INVALID_FEEDBACK, None, 0.0, False, True, extra)

    def _prompt(self, history: EpisodeHistory, info: dict[str, Any]) -> list[dict[str, str]]:
        return build_messages(history, history_length=self.config.history_length)

    def close(self) -> None:
        self._retriever.close()
        self._slots, self._pending = {}, {}
