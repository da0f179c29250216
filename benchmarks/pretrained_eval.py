"""Evaluate an imported pretrained model (e.g. SmolLM2 from `sdar import-model smollm2 DIR`) on
each benchmark as the paper's two untrained rows: Vanilla (no skills) and Skill-Prompt (retrieved
skills in the prompt).

Prints, per env and row: success (Wilson 95% interval over tasks) and the valid-action rate
(actions the environment accepted / all actions, with a Wilson interval over actions, which are
not independent draws: read it as a rough range). Results JSONs (with every model text) go to
`--out`. Validation sets are the stratified subsets of `sdar eval --n-tasks`.

Usage:  python benchmarks/pretrained_eval.py MODEL_DIR [--games ALFWORLD_GAMES] [--n-tasks 12]
        [--max-steps 10] [--max-new-tokens 64] [--envs alfworld webshop search] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def wilson(successes: int, n: int) -> tuple[float, float]:
    from sdar_core.evaluation.metrics import wilson_interval

    return wilson_interval(successes, n)


def main() -> None:
    from sdar_core.envs.alfworld import generate_games
    from sdar_core.evaluation import EvalConfig, evaluate
    from sdar_core.run.config import env_data
    from sdar_core.skills import build_index, bundled_skills_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--games", type=Path, default=None, help="ALFWorld games (else made)")
    parser.add_argument("--n-tasks", type=int, default=12)
    parser.add_argument("--max-steps", type=int, default=10)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=12)
    parser.add_argument("--envs", nargs="+", default=["alfworld", "webshop", "search"])
    parser.add_argument("--out", type=Path, default=Path("runs/pretrained_eval"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print("| env | row | success | 95% CI | valid actions | 95% CI | tasks | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for env in args.envs:
        data = env_data(env)
        if data.shipped_dir is not None:
            games = data.shipped_dir()
        else:
            games = args.games or args.out / "alfworld_games"
            if not (games / "manifest.json").is_file():
                generate_games(games, n_train=1, n_valid_seen=args.n_tasks, n_valid_unseen=0)
        index = build_index(bundled_skills_dir(env), args.out / f"index-{env}", dense=False)
        for row, skills in (("vanilla", False), ("skill_prompt", True)):
            config = EvalConfig(
                env=env,
                split=data.eval_split,
                n_tasks=args.n_tasks,
                max_steps=args.max_steps,
                max_new_tokens=args.max_new_tokens,
                batch_size=args.batch_size,
                student_sees_skills=skills,
                show_progress=False,
            )
            started = time.perf_counter()
            out = args.out / f"{env}-{row}.json"
            results = evaluate(args.model_dir, games, out, config, skills_index_dir=index)
            seconds = time.perf_counter() - started
            episodes = results["episodes"]
            won = sum(e["won"] for e in episodes)
            steps = sum(e["steps"] for e in episodes)
            valid = steps - sum(e["invalid_actions"] for e in episodes)
            s_lo, s_hi = wilson(won, len(episodes))
            v_lo, v_hi = wilson(valid, steps) if steps else (0.0, 0.0)
            print(
                f"| {env} | {row} | {won / len(episodes):.3f} | [{s_lo:.3f}, {s_hi:.3f}] | "
                f"{valid / max(1, steps):.3f} | [{v_lo:.3f}, {v_hi:.3f}] | {len(episodes)} | "
                f"{seconds:.0f} |",
                flush=True,
            )
            (args.out / f"{env}-{row}.summary.json").write_text(
                json.dumps({"won": won, "n": len(episodes), "steps": steps, "valid": valid})
            )


if __name__ == "__main__":
    main()
