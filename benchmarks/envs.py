"""Benchmark the ALFWorld environment on the real engine.

Measures, on freshly generated games:
- game generation time per game (sampling + writing + verification by the expert on the engine);
- reset time for a batch of `--batch` episodes (load + reset of each game);
- environment steps per second for that batch, stepping it with the expert (model text in,
  projection, engine step, prompt building for every live episode);
each with and without the patches of `sdar_core.envs.alfworld.parse_cache` (side by
side, cold caches, and checking that the episodes end the same), for a batch of distinct games
and for a batch of groups (`--group` episodes per game, as GRPO rollouts play them).

Usage:  python benchmarks/envs.py [--batch 64] [--games 64] [--steps 20] [--group 8] [--seed 0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from stepping import step_batch

from sdar_core.envs import make
from sdar_core.envs.alfworld import ExpertPolicy, generate_games


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="episodes per batch")
    parser.add_argument("--games", type=int, default=64, help="games to generate")
    parser.add_argument("--steps", type=int, default=20, help="batch steps to time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--group", type=int, default=8, help="episodes per game in group mode")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "games"
        start = time.perf_counter()
        generate_games(out, n_train=args.games, n_valid_seen=0, n_valid_unseen=0, seed=args.seed)
        gen_s = time.perf_counter() - start
        print(f"generation: {args.games} games in {gen_s:.1f} s = {gen_s / args.games:.2f} s/game")

        from sdar_core.envs.alfworld import parse_cache

        parse_cache.install()
        for label, group in (("distinct games", 1), (f"groups of {args.group}", args.group)):
            with parse_cache.uninstalled():
                plain = _reset_and_step(out, args, group)
            parse_cache.clear()  # cold: no game or template seen before
            cached = _reset_and_step(out, args, group)
            print(f"{label}: without parse cache: {_line(plain)}")
            print(f"{label}: with parse cache:    {_line(cached)}")
            print(
                f"{label}: speed-up reset {plain['reset_s'] / cached['reset_s']:.2f}x, "
                f"steps {cached['steps_per_s'] / plain['steps_per_s']:.2f}x; "
                f"same episodes: {plain['outcome'] == cached['outcome']}"
            )


def _reset_and_step(games: Path, args, group: int) -> dict:
    """Reset `args.batch` episodes (`group` consecutive ones play the same game), then step the
    batch with the expert for up to `args.steps` steps."""
    with make("alfworld", data_dir=games, split="train", seed=args.seed) as env:
        order = env.task_order(0)
        tasks = [order[(i // group) % len(order)] for i in range(args.batch)]
        start = time.perf_counter()
        records = env.reset(task_ids=tasks)
        reset_s = time.perf_counter() - start
        records, stepped, step_s = step_batch(env, ExpertPolicy(), records, max_steps=args.steps)
    return {
        "reset_s": reset_s,
        "steps": stepped,
        "steps_per_s": stepped / step_s,
        "won": sum(r.info["won"] for r in records),
        "outcome": [(r.observation, r.info["won"], r.info["step"]) for r in records],
    }


def _line(m: dict) -> str:
    n = len(m["outcome"])
    return (
        f"reset {m['reset_s']:.2f} s ({m['reset_s'] / n:.3f} s/ep); {m['steps']} episode-steps "
        f"at {m['steps_per_s']:.1f} steps/s ({1000 / m['steps_per_s']:.1f} ms/step); "
        f"won {m['won']}/{n}"
    )


if __name__ == "__main__":
    main()
