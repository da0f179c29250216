"""Options of the Search-QA environment (one frozen config).

Where the questions come from: `data` (the issue's name) or `data_dir` (the name the rollout stage
passes) - a Search-R1 parquet file, or a folder of them - or, when both are None, the shipped
questions. With a folder, `split` picks `<split>.parquet`; None plays every parquet file in it.
Where the documents come from: `retrieval_url` (a running `/retrieve` server, e.g.
"http://127.0.0.1:8000/retrieve"), else an in-process BM25 index over `corpus` (default: the
shipped corpus), so that tests and laptop runs need no server.

Defaults follow Search-R1 / the reference: top 3 documents, 4 turns, reward 1.0 for an exact match
(Search-R1's reward is the EM itself), no <think> required.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sdar_core.limits import Count

__all__ = ["SearchConfig"]


class SearchConfig(BaseModel):
    """Everything `make("search", **options)` accepts."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    data: Path | None = Field(default=None, description="QA parquet file or folder")
    data_dir: Path | None = Field(default=None, description="same as data (rollout-stage name)")
    split: str | None = Field(default=None, description="<split>.parquet in a folder; None: all")
    data_sources: tuple[str, ...] | None = Field(
        default=None, description="only questions from these data sources; None: all"
    )
    retrieval_url: str | None = Field(default=None, description="URL of a /retrieve endpoint")
    corpus: Path | None = Field(
        default=None, description="corpus JSONL searched in-process when retrieval_url is None"
    )
    topk: Count = Field(default=3, ge=1, description="documents returned per search")
    max_steps: Count = Field(default=4, ge=1, description="turns before an episode is truncated")
    history_length: Count = Field(default=4, ge=0, description="past steps shown in the prompt")
    win_reward: float = Field(default=1.0, description="reward for an exact-match answer")
    require_think: bool = Field(default=False, description="flag steps without <think> invalid")
    seed: Count = Field(default=0, description="seeds the per-episode seeds and task draws")
    timeout_s: float = Field(default=10.0, gt=0, description="HTTP timeout per retrieval request")
    retries: Count = Field(default=3, ge=0, description="retries of a failed retrieval request")

    @model_validator(mode="after")
    def _one_data_path(self) -> SearchConfig:
        if self.data is not None and self.data_dir is not None:
            raise ValueError("give data or data_dir, not both (they mean the same thing)")
        if self.retrieval_url is not None and self.corpus is not None:
            raise ValueError(
                "give retrieval_url (a running server) or corpus (search in-process), not both"
            )
        return self

    def qa_files(self, shipped_dir: Path) -> list[Path]:
        """The parquet files to read, sorted."""
        root = self.data if self.data is not None else self.data_dir
        root = shipped_dir if root is None else root
        if root.is_file():
            return [root]
        if self.split is not None:
            return [root / f"{self.split}.parquet"]
        return sorted(root.glob("*.parquet"))
