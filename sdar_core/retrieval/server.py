"""The retrieval server: Search-R1's `/retrieve` API over a BM25 index (FastAPI + uvicorn).

    POST /retrieve  {"queries": [str], "topk": 3, "return_scores": true}
      -> {"result": [[{"document": {"id": str, "contents": "\"T\"\ntext"}, "score": float}, ...]]}
      -> {"result": [[{"id": str, "contents": ...}, ...]]}        when return_scores is false
    GET  /health    -> {"status": "ok", "documents": n}

As in Search-R1, `topk` may be omitted (the server's default, 3) and `return_scores` defaults to
false. Departures, both for safety on a shared machine: the server binds 127.0.0.1 unless told
otherwise, and it rejects oversized requests with a 4xx whose `detail` says which limit was hit and
how to fix it - too many queries or a too-long query or too-large topk (422), a body over
`max_body_bytes` (413, checked on the bytes received, whatever Content-Length claims).
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sdar_core.retrieval.index import Bm25Index

__all__ = ["RetrieveRequest", "ServerConfig", "create_app", "serve"]


class ServerConfig(BaseModel):
    """Settings of `sdar serve-retrieval`: where to listen and the request limits."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    host: str = Field(default="127.0.0.1", description="interface to bind; loopback by default")
    port: int = Field(default=8000, ge=0, le=65535, description="TCP port (0: any free port)")
    default_topk: int = Field(default=3, ge=1, description="topk when a request omits it")
    max_topk: int = Field(default=100, ge=1, description="largest topk a request may ask for")
    max_queries: int = Field(default=256, ge=1, description="most queries in one request")
    max_query_chars: int = Field(default=2000, ge=1, description="longest query, in characters")
    max_body_bytes: int = Field(default=1_000_000, ge=1024, description="largest request body")


class RetrieveRequest(BaseModel):
    """The body of POST /retrieve (Search-R1's QueryRequest)."""

    queries: list[str]
    topk: int | None = None
    return_scores: bool = False


def _limit_errors(request: RetrieveRequest, config: ServerConfig) -> str | None:
    """Why a request breaks a limit (a message that says how to fix it), or None."""
    if len(request.queries) > config.max_queries:
        return (
            f"too many queries: {len(request.queries)} > max_queries={config.max_queries}; "
            "split them into smaller batches"
        )
    for i, query in enumerate(request.queries):
        if len(query) > config.max_query_chars:
            return (
                f"query {i} is too long: {len(query)} characters > "
                f"max_query_chars={config.max_query_chars}; shorten it"
            )
    if request.topk is not None and not 1 <= request.topk <= config.max_topk:
        return f"topk must be between 1 and max_topk={config.max_topk}, got {request.topk}"
    return None


def _document(doc) -> dict[str, str]:
    return {"id": doc.id, "contents": doc.contents}


def create_app(index: Bm25Index, config: ServerConfig | None = None):
    """The FastAPI application serving `index`."""
    from fastapi import FastAPI, HTTPException

    config = config or ServerConfig()
    app = FastAPI(title="sdar retrieval server", docs_url=None, redoc_url=None)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "documents": len(index)}

    @app.post("/retrieve")
    def retrieve(request: RetrieveRequest) -> dict[str, Any]:
        problem = _limit_errors(request, config)
        if problem is not None:
            raise HTTPException(status_code=422, detail=problem)
        topk = request.topk if request.topk is not None else config.default_topk
        ranked = index.search(request.queries, topk)
        if request.return_scores:
            result = [
                [{"document": _document(index.docs[i]), "score": s} for i, s in hits]
                for hits in ranked
            ]
        else:
            result = [[_document(index.docs[i]) for i, _ in hits] for hits in ranked]
        return {"result": result}

    return BodyLimit(app, max_bytes=config.max_body_bytes)


class BodyLimit:
    """ASGI middleware: answer 413 when a request body is larger than `max_bytes`.

    It rejects early when Content-Length already says too much, and otherwise reads the body
    itself, counting the bytes actually received (a client can lie in Content-Length or stream a
    chunked body), before handing the buffered body on to the application.
    """

    def __init__(self, app, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _message(self, size: str) -> str:
        return (
            f"request body too large: {size} > max_body_bytes={self.max_bytes}; "
            "send fewer or shorter queries per request"
        )

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _reject(send, self._message(f"{int(declared)} bytes"))
            return
        chunks, received = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # client went away
                return
            chunks.append(message.get("body", b""))
            received += len(chunks[-1])
            if received > self.max_bytes:
                await _reject(send, self._message(f"at least {received} bytes"))
                return
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()  # the app waits for a disconnect after the body
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _reject(send, detail: str) -> None:
    import json

    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def serve(corpus: str | os.PathLike[str], config: ServerConfig | None = None) -> None:
    """Load `corpus` (JSONL), index it and serve until interrupted (blocking)."""
    import uvicorn

    from sdar_core.retrieval.corpus import read_corpus

    config = config or ServerConfig()
    index = Bm25Index(read_corpus(corpus))
    uvicorn.run(create_app(index, config), host=config.host, port=config.port, log_level="info")
