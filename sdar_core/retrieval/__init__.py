"""Search-R1's retrieval protocol: the corpus layout, a BM25 index, the server and its client.

- `read_corpus` / `write_corpus` / `Document` - corpus JSONL (`{"id", "contents": "\"T\"\ntext"}`);
- `Bm25Index` (bm25s) and `LocalRetriever` (in-process, no server);
- `create_app` / `serve` / `ServerConfig` - the FastAPI `/retrieve` server (`sdar serve-retrieval`);
- `RetrievalClient` - the HTTP client with timeouts and retries; `RetrievalError` when it gives up;
- `serving` - run a server in a background thread (tests, benchmarks).

Both retrievers have `retrieve(queries, *, topk) -> list[list[Hit]]`, so an environment can use
either. Importing this package does not import FastAPI, uvicorn or httpx.
"""

from sdar_core.retrieval.background import serving, wait_until_healthy
from sdar_core.retrieval.client import (
    RetrievalClient,
    RetrievalError,
    RetrievalRejected,
    parse_result,
    retrieve_each,
)
from sdar_core.retrieval.corpus import Document, read_corpus, title_and_text, write_corpus
from sdar_core.retrieval.index import Bm25Index, Hit, LocalRetriever, tokenize
from sdar_core.retrieval.server import RetrieveRequest, ServerConfig, create_app, serve

__all__ = [
    "Bm25Index",
    "Document",
    "Hit",
    "LocalRetriever",
    "RetrievalClient",
    "RetrievalError",
    "RetrievalRejected",
    "RetrieveRequest",
    "ServerConfig",
    "create_app",
    "parse_result",
    "retrieve_each",
    "read_corpus",
    "serve",
    "serving",
    "title_and_text",
    "tokenize",
    "write_corpus",
    "wait_until_healthy",
]
