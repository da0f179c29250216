"""Benchmark building the pipeline graph against the number of rounds.

KFP v2 cannot loop over artifacts, so `build_pipeline` unrolls the rounds (2-3 tasks each); the
time to build the graph should grow linearly with them. For each round count this prints the
build time (the median of `--repeats` builds of the embedded run's graph: `sdar run`'s set-up
builds exactly this), the time per round, and the ratio to the previous count's time next to
the ratio of the round counts (linear: the two ratios agree). `--compile` also writes the YAML
as `sdar compile` does (cluster profile, with the exit handler).

Run it against another checkout (e.g. main, to compare) by pointing PYTHONPATH at it:
    PYTHONPATH=/path/to/checkout python benchmarks/graph_build.py [--rounds 50 100 200 400]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def _seconds(rounds: int, *, compile_yaml: bool, repeats: int) -> float:
    from pipelines.sdar_pipeline import PipelineOptions, build_pipeline, compile_pipeline

    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        if compile_yaml:
            with tempfile.TemporaryDirectory() as tmp:
                compile_pipeline(PipelineOptions(rounds=rounds), Path(tmp) / "p.yaml")
        else:
            build_pipeline(PipelineOptions(rounds=rounds, profile="local", exit_handler=False))
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, nargs="+", default=[50, 100, 200, 400])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="also write the YAML")
    args = parser.parse_args()
    import pipelines.sdar_pipeline as module

    print(f"pipelines from {Path(module.__file__).parent}")
    _seconds(2, compile_yaml=args.compile, repeats=1)  # imports and first-use caches
    print(f"{'rounds':>7} {'seconds':>8} {'ms/round':>9} {'time ratio':>11} {'rounds ratio':>13}")
    previous = None
    for rounds in args.rounds:
        seconds = _seconds(rounds, compile_yaml=args.compile, repeats=args.repeats)
        ratios = ""
        if previous is not None:
            ratios = f"{seconds / previous[1]:>11.2f} {rounds / previous[0]:>13.2f}"
        print(f"{rounds:>7} {seconds:>8.2f} {1000 * seconds / rounds:>9.1f} {ratios}")
        previous = (rounds, seconds)


if __name__ == "__main__":
    main()
