"""Benchmark the three action parsers on long unclosed tags (issue 13).

Times one parse of N characters of a repeated opening tag (`<action>`, `<search>`, `<answer>`,
`<think>` followed by a closed action) for the ALFWorld, WebShop and Search-QA projections, at
the length cap and, for the tag scan alone, at N. The lazy regexes these parsers used
(`<action>(.*?)</action>`) took 9-10 s at N = 100,000 on 2 cores and 0.64 s at the cap.

Usage:  python benchmarks/parsers.py [--chars 100000]
"""

from __future__ import annotations

import argparse
import time

from sdar_core.envs.alfworld.projection import project_action as alfworld
from sdar_core.envs.search.projection import project_action as search
from sdar_core.envs.tags import MAX_MODEL_TEXT_CHARS, all_blocks
from sdar_core.envs.webshop.projection import project_action as webshop

CASES = {
    "alfworld <action>": (lambda text: alfworld(text, {"look"}), "<action>"),
    "webshop <action>": (lambda text: webshop(text, {"x"}, has_search_bar=True), "<action>"),
    "search <search>": (search, "<search>"),
    "search <answer>": (search, "<answer>"),
    "alfworld <think>": (lambda text: alfworld(text, {"look"}), "<think>"),
}


def _seconds(fn, text: str) -> float:
    started = time.perf_counter()
    fn(text)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=100_000)
    args = parser.parse_args()
    for name, (fn, tag) in CASES.items():
        for n in (args.chars, MAX_MODEL_TEXT_CHARS):
            text = (tag * (n // len(tag) + 1))[:n]
            print(f"{name:20s} {n:>7} chars: {_seconds(fn, text) * 1000:8.3f} ms")
    for tag in ("action", "search"):
        text = (f"<{tag}>" * (args.chars // len(tag) + 1))[: args.chars]
        seconds = _seconds(lambda t, tag=tag: all_blocks(t, tag), text)
        print(f"tag scan <{tag}> {args.chars} chars (no cap): {seconds * 1000:.3f} ms")


if __name__ == "__main__":
    main()
