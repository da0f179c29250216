"""The loop the environment benchmarks time: a policy plays a batch of episodes, building every
live episode's prompt after each step as a rollout does, until every episode is done or
`max_steps` batch steps have run. Imported by benchmarks/envs.py, search.py and webshop.py."""

from __future__ import annotations

import time


def step_batch(env, policy, records, *, max_steps: int | None = None) -> tuple[list, int, float]:
    """(final records, episode-steps taken, seconds spent stepping)."""
    stepped, batch_steps, start = 0, 0, time.perf_counter()
    while not all(r.done for r in records) and (max_steps is None or batch_steps < max_steps):
        live = sum(not r.done for r in records)
        records = env.step(policy(records))
        env.prompts()
        stepped, batch_steps = stepped + live, batch_steps + 1
    return records, stepped, time.perf_counter() - start
