"""HTTP client of the retrieval server (`/retrieve`), with timeouts and retries with back-off.

`RetrievalClient(url).retrieve(queries, topk=3)` posts one batch and returns, per query, a list of
`Hit`s (document + score). Transient failures - the connection refused or reset, a timeout, a 5xx
or 429 answer - are retried with exponential back-off (tenacity); after the last attempt it raises
`RetrievalError` naming the URL, the attempts and how to start a server. A 4xx answer is the
caller's fault and is raised at once (`RetrievalRejected`) with the server's `detail`. A malformed
answer (not Search-R1's shape) raises too. It asks for scores by default; it accepts both of the
server's shapes.

Limits, kept on this side so that one runaway query cannot fail a whole batch: a query is cut to
`max_query_chars` characters (default 2,000, the server's default `max_query_chars`; a model that
writes a longer "query" is not searching), and a batch goes out in requests of at most
`max_queries` queries (the server's default, 256). `retrieve_each` isolates failures per query:
when the server rejects a batch, each of its queries is sent alone, so only the query at fault
fails and the other episodes of the batch go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sdar_core.errors import SdarError
from sdar_core.retrieval.corpus import Document
from sdar_core.retrieval.index import Hit

__all__ = [
    "MAX_QUERIES",
    "MAX_QUERY_CHARS",
    "RetrievalClient",
    "RetrievalError",
    "RetrievalRejected",
    "parse_result",
    "retrieve_each",
]

MAX_QUERY_CHARS = 2000  # the server's default max_query_chars (server.ServerConfig)
MAX_QUERIES = 256  # the server's default max_queries
START_HINT = "start one with `sdar serve-retrieval --corpus FILE` or pass the right retrieval_url"


class RetrievalError(SdarError):
    """The retrieval server could not be reached or gave an unusable answer."""


class RetrievalRejected(RetrievalError):
    """The server refused the request (HTTP 4xx): the request, not the server, is at fault."""


class _Transient(Exception):
    """A failure worth retrying (wraps the cause)."""


def _document(raw: Any) -> Document:
    if not isinstance(raw, dict) or "id" not in raw or not isinstance(raw.get("contents"), str):
        raise ValueError(f"a document needs 'id' and 'contents', got {str(raw)[:80]}")
    return Document(id=str(raw["id"]), contents=raw["contents"])


def parse_result(payload: Any, n_queries: int) -> list[list[Hit]]:
    """Hits from a `/retrieve` answer, with or without scores; ValueError when malformed."""
    if not isinstance(payload, dict) or not isinstance(payload.get("result"), list):
        raise ValueError("the answer has no 'result' list")
    result = payload["result"]
    if len(result) != n_queries:
        raise ValueError(f"{len(result)} result lists for {n_queries} queries")
    hits = []
    for per_query in result:
        if not isinstance(per_query, list):
            raise ValueError("each query's result must be a list")
        hits.append([_hit(item) for item in per_query])
    return hits


def _hit(item: Any) -> Hit:
    if isinstance(item, dict) and "document" in item:
        score = item.get("score")
        return Hit(_document(item["document"]), None if score is None else float(score))
    return Hit(_document(item), None)


class RetrievalClient:
    """A client of one retrieval server; see the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 10.0,
        retries: int = 3,
        backoff_s: float = 0.2,
        max_backoff_s: float = 5.0,
        return_scores: bool = True,
        max_query_chars: int = MAX_QUERY_CHARS,
        max_queries: int = MAX_QUERIES,
        transport: Any = None,
    ) -> None:
        import httpx

        if retries < 0:
            raise SdarError(f"retries must be >= 0, got {retries}: use 0 to try once")
        if max_query_chars < 1 or max_queries < 1:
            raise SdarError(
                f"max_query_chars and max_queries must be >= 1, got {max_query_chars} and "
                f"{max_queries}: use {MAX_QUERY_CHARS} and {MAX_QUERIES} (the server's defaults)"
            )
        self.url = url
        self.max_query_chars = max_query_chars
        self.max_queries = max_queries
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.return_scores = return_scores
        self._http = httpx.Client(timeout=timeout_s, transport=transport)

    def retrieve(self, queries: Sequence[str], *, topk: int) -> list[list[Hit]]:
        """Per query (cut to `max_query_chars`), the server's top `topk` hits."""
        queries = [query[: self.max_query_chars] for query in queries]
        hits: list[list[Hit]] = []
        for start in range(0, len(queries), self.max_queries):
            hits += self._retrieve_batch(queries[start : start + self.max_queries], topk=topk)
        return hits

    def _retrieve_batch(self, queries: list[str], *, topk: int) -> list[list[Hit]]:
        from tenacity import (
            RetryError,
            Retrying,
            retry_if_exception_type,
            stop_after_attempt,
            wait_exponential,
        )

        if not queries:
            return []
        body = {"queries": queries, "topk": topk, "return_scores": self.return_scores}
        retrying = Retrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=wait_exponential(multiplier=self.backoff_s, max=self.max_backoff_s),
            retry=retry_if_exception_type(_Transient),
        )
        try:
            payload = retrying(self._post, body)
        except RetryError as exc:
            cause = exc.last_attempt.exception()
            raise RetrievalError(
                f"retrieval server at {self.url} failed after {self.retries + 1} attempt(s): "
                f"{cause.__cause__ or cause}; {START_HINT}"
            ) from cause
        try:
            return parse_result(payload, len(queries))
        except ValueError as exc:
            raise RetrievalError(
                f"retrieval server at {self.url} answered in an unexpected shape ({exc}): "
                "it must speak Search-R1's /retrieve API"
            ) from exc

    def _post(self, body: dict[str, Any]) -> Any:
        import httpx

        try:
            response = self._http.post(self.url, json=body)
        except httpx.TransportError as exc:  # refused, reset, timed out
            raise _Transient(type(exc).__name__) from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise _Transient(f"HTTP {response.status_code}") from None
        if response.status_code >= 400:
            raise RetrievalRejected(
                f"retrieval server at {self.url} rejected the request with HTTP "
                f"{response.status_code}: {_detail(response)}"
            )
        try:
            return response.json()
        except ValueError as exc:
            raise RetrievalError(f"retrieval server at {self.url} did not answer JSON") from exc

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RetrievalClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def retrieve_each(retriever: Any, queries: Sequence[str], *, topk: int) -> list[Any]:
    """Per query, its hits or the exception its request ended with (module docstring).

    All queries go in one `retriever.retrieve` call; when that is rejected (the batch holds a
    query the server refuses), each query is retried alone. Any other failure (the server is
    down after its retries) is every query's.
    """
    queries = list(queries)
    try:
        return list(retriever.retrieve(queries, topk=topk))
    except RetrievalRejected as exc:
        if len(queries) == 1:
            return [exc]
    except Exception as exc:  # noqa: BLE001 - handed to each episode, which ends with it
        return [exc] * len(queries)
    results: list[Any] = []
    for query in queries:
        try:
            results.append(retriever.retrieve([query], topk=topk)[0])
        except Exception as exc:  # noqa: BLE001 - this query's episode ends with it
            results.append(exc)
    return results


def _detail(response) -> str:
    try:
        return str(response.json().get("detail", response.text))[:500]
    except ValueError:
        return response.text[:500]
