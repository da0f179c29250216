"""Benchmark Search-QA: environment steps per second, and the retrieval server on loopback.

- env: 64 episodes (shipped questions, cycled) played to the end by the oracle searcher, timing
  every batch step (projection, one batched retrieval, observation, prompt building), with the
  in-process BM25 retriever and through the HTTP server;
- server: `--requests` POST /retrieve calls of `--batch` queries each (the shipped questions,
  cycled), one after another on loopback; requests per second and p50 / p99 latency;
- skill retrieval: recall@1 / MRR of the bundled Search-QA skills (BM25) on the labelled sets.

Every loop is bounded. The server runs as a separate process (`sdar serve-retrieval`, as in real
use) on a free loopback port and is terminated at the end. (Run in a thread of the measuring
process instead, uvicorn answers in ~44 ms per request on this machine because the two threads share
the GIL; that mode is only for tests.)
Usage:  python benchmarks/search.py [--episodes 64] [--requests 500] [--batch 8] [--topk 3]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from stepping import step_batch

from sdar_core.envs import make
from sdar_core.envs.search import SHIPPED_DIR, OracleSearcher, read_qa
from sdar_core.retrieval import wait_until_healthy


def env_speed(episodes: int, label: str, **options) -> None:
    env = make("search", **options)
    tasks = [env.task_order(0)[i % len(env.task_ids)] for i in range(episodes)]
    policy = OracleSearcher.from_corpus()
    start = time.perf_counter()
    records = env.reset(task_ids=tasks)
    reset_s = time.perf_counter() - start
    records, stepped, step_s = step_batch(env, policy, records, max_steps=env.max_steps)
    seconds = reset_s + step_s
    won = sum(r.info["won"] for r in records)
    env.close()
    print(
        f"env ({label}): {episodes} episodes, {stepped} episode-steps in {seconds:.3f} s = "
        f"{stepped / seconds:.0f} steps/s; won {won}/{episodes}"
    )


def server_speed(url: str, n_requests: int, batch: int, topk: int) -> None:
    questions = [q.question for q in read_qa(SHIPPED_DIR / "test.parquet")]
    latencies = []
    with httpx.Client(timeout=10) as client:
        for i in range(n_requests):
            queries = [questions[(i * batch + j) % len(questions)] for j in range(batch)]
            start = time.perf_counter()
            answer = client.post(
                url, json={"queries": queries, "topk": topk, "return_scores": True}
            )
            latencies.append(time.perf_counter() - start)
            answer.raise_for_status()
    ms = 1000 * np.asarray(latencies)
    print(
        f"server: {n_requests} requests x {batch} queries (topk {topk}) in {ms.sum() / 1000:.2f}"
        f" s = {n_requests / (ms.sum() / 1000):.0f} req/s; p50 {np.percentile(ms, 50):.2f} ms,"
        f" p99 {np.percentile(ms, 99):.2f} ms"
    )


def skill_recall() -> None:
    from sdar_core.skills import build_index, bundled_skills_dir, load_index
    from sdar_core.skills.evaluation import evaluate, index_ranker
    from sdar_core.skills.search_queries import query_sets

    with tempfile.TemporaryDirectory() as tmp:
        index = load_index(build_index(bundled_skills_dir("search"), Path(tmp) / "i", dense=False))
        for name, queries in query_sets().items():
            m = evaluate(queries, index_ranker(index))
            print(
                f"skills ({name}, bm25): n {m.n_queries}, R@1 {m.recall_at_1:.3f}, "
                f"R@3 {m.recall_at_3:.3f}, MRR {m.mrr:.3f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--topk", type=int, default=3)
    args = parser.parse_args()

    env_speed(args.episodes, "in-process bm25")
    with socket.socket() as sock:  # a free port for the server process
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "sdar_core.cli",
        "serve-retrieval",
        "--corpus",
        str(SHIPPED_DIR / "corpus.jsonl"),
        "--port",
        str(port),
    ]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base, timeout_s=60, alive=lambda: server.poll() is None)
        env_speed(args.episodes, "http server", retrieval_url=f"{base}/retrieve")
        server_speed(f"{base}/retrieve", args.requests, args.batch, args.topk)
    finally:
        server.terminate()
        server.wait(timeout=30)
    skill_recall()


if __name__ == "__main__":
    main()
