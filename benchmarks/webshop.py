"""Benchmark the WebShop environment on the shipped catalog.

Measures:
- build time of an environment (catalog read + BM25 index over its products);
- reset time for a batch of `--batch` episodes;
- environment steps per second for that batch, stepping it with the scripted buyer until every
  episode is done (model text in, projection, page update, reward on purchase, and prompt
  building for every live episode), and the buyer's score and accuracy;
- the same for the random policy, as a lower bound.

Usage:  python benchmarks/webshop.py [--batch 64] [--split test|train] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

from stepping import step_batch

from sdar_core.envs import make
from sdar_core.envs.webshop import ExpertPolicy, RandomPolicy, eval_metrics
from sdar_core.envs.webshop.env import load_shop


def run(env, policy, tasks: list[str], name: str) -> None:
    start = time.perf_counter()
    records = env.reset(task_ids=tasks)
    reset_s = time.perf_counter() - start
    records, stepped, step_s = step_batch(env, policy, records)
    metrics = eval_metrics(records)
    print(
        f"{name:<7} reset {len(tasks)} episodes in {1000 * reset_s:.1f} ms; "
        f"{stepped} episode-steps in {step_s:.3f} s = {stepped / step_s:,.0f} steps/s "
        f"({1000 * step_s / max(stepped, 1):.2f} ms/step); "
        f"score {metrics['score']:.1f}, accuracy {metrics['accuracy']:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="episodes per batch")
    parser.add_argument("--split", default="train", choices=["train", "test"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    start = time.perf_counter()
    env = make("webshop", split=args.split, seed=args.seed)
    build_s = time.perf_counter() - start
    catalog, _ = load_shop(None, True, None, args.seed)
    print(
        f"build: {len(catalog.products)} products, {len(env.task_ids)} {args.split} goals, "
        f"catalog + BM25 index in {build_s:.2f} s"
    )
    tasks = [env.task_order(0)[i % len(env.task_ids)] for i in range(args.batch)]
    run(env, ExpertPolicy(), tasks, "expert")
    run(env, RandomPolicy(seed=args.seed), tasks, "random")


if __name__ == "__main__":
    main()
