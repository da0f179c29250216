"""Figures of a miniature world at the start of RL, from a finished `sdar run`'s artifacts.

    python benchmarks/miniature_start.py --checkpoint CKPT --games GAMES --index INDEX \
        [--scored SCORED ...] [--world miniature2] [--out results.json]

- student success: the warm-started checkpoint on the held-out games with the run's evaluation
  settings (`RunConfig(world=...).eval`), no skills in its prompt;
- the Skill-Prompt ceiling: the same checkpoint, same settings, with the retrieved skill in its
  prompt (what the teacher sees);
- from each round's scored trajectories (the teacher stage's output, SCORED): the flat-group
  ratio (groups whose episodes all got the same reward: GRPO's advantage is 0 there), and the
  teacher - student log-probability gap on *decisive* tokens (the tokens of the action that name
  an object or a receptacle) in won and lost episodes, with the share of lost episodes holding a
  decisive token the teacher endorses by >= 1 nat.

Nothing here is tuned: the settings are the run's. Figures print as JSON.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

VERBS = frozenset(
    "go to take from move in on open close examine look inventory use put heat cool clean "
    "with toggle slice".split()
)
_WORD = re.compile(r"[a-z]+")
ENDORSED_NATS = 1.0


def decisive_positions(tokenizer, response_ids: list[int]) -> list[int]:
    """Positions of the tokens inside <action>...</action> that overlap a name (a word that is
    not a verb, a preposition or a number)."""
    ends, text = [], ""
    for i in range(len(response_ids)):
        text = tokenizer.decode(response_ids[: i + 1], skip_special_tokens=True)
        ends.append(len(text))
    starts = [0, *ends[:-1]]
    open_at = text.find("<action>")
    if open_at < 0:
        return []
    body_start = open_at + len("<action>")
    close_at = text.find("</action>", body_start)
    body_end = close_at if close_at >= 0 else len(text)
    spans = [
        (body_start + m.start(), body_start + m.end())
        for m in _WORD.finditer(text[body_start:body_end])
        if m.group() not in VERBS
    ]
    return [
        i
        for i, (a, b) in enumerate(zip(starts, ends, strict=True))
        if b > a and any(a < e and s < b for s, e in spans)
    ]


def _quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "n": len(values),
        "mean": statistics.fmean(values),
        "p10": pick(0.1),
        "p50": pick(0.5),
        "p90": pick(0.9),
    }


def gap_figures(scored_dir: Path, tokenizer) -> dict:
    """Flat-group ratio and decisive-token gaps of one round's scored trajectories."""
    from sdar_core.rollout.schema import read_trajectories

    rows = read_trajectories(scored_dir, require_teacher=True)
    episodes: dict[tuple, dict] = {}
    group_rewards: dict = defaultdict(dict)
    gaps = {"won": [], "lost": [], "other_won": [], "other_lost": []}
    for row in rows:
        key = (row["group_id"], row["member"])
        ep = episodes.setdefault(key, {"won": bool(row["won"]), "endorsed": False})
        group_rewards[row["group_id"]][row["member"]] = float(row["episode_reward"])
        outcome = "won" if ep["won"] else "lost"
        decisive = set(decisive_positions(tokenizer, list(row["response_ids"])))
        for i, (t, s, m) in enumerate(
            zip(row["teacher_logprobs"], row["old_logprobs"], row["response_mask"], strict=True)
        ):
            if not m:
                continue
            gap = float(t) - float(s)
            if i in decisive:
                gaps[outcome].append(gap)
                ep["endorsed"] |= gap >= ENDORSED_NATS
            else:
                gaps[f"other_{outcome}"].append(gap)
    lost = [e for e in episodes.values() if not e["won"]]
    flat = [len(set(r.values())) == 1 for r in group_rewards.values()]
    return {
        "episodes": len(episodes),
        "success": sum(e["won"] for e in episodes.values()) / len(episodes),
        "groups": len(flat),
        "flat_group_ratio": sum(flat) / len(flat),
        "lost_episodes": len(lost),
        "lost_with_endorsed_decisive_token": (
            sum(e["endorsed"] for e in lost) / len(lost) if lost else None
        ),
        "gap_decisive_won": _quantiles(gaps["won"]),
        "gap_decisive_lost": _quantiles(gaps["lost"]),
        "gap_other_won": _quantiles(gaps["other_won"]),
        "gap_other_lost": _quantiles(gaps["other_lost"]),
    }


def evaluations(checkpoint: Path, games: Path, index: Path, world: str) -> dict:
    """Student success and the Skill-Prompt ceiling with the run's evaluation settings."""
    from sdar_core.evaluation import evaluate
    from sdar_core.run import RunConfig

    settings = RunConfig(world=world).eval.model_dump() | {"show_progress": False}
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, sees in (("student", False), ("skill_prompt", True)):
            config = type(RunConfig().eval).model_validate(settings | {"student_sees_skills": sees})
            started = time.perf_counter()
            result = evaluate(
                checkpoint, games, Path(tmp) / f"{name}.json", config, skills_index_dir=index
            )
            episodes = result["episodes"]
            out[name] = {
                "success": sum(bool(e["won"]) for e in episodes) / len(episodes),
                "won": sum(bool(e["won"]) for e in episodes),
                "episodes": len(episodes),
                "seconds": round(time.perf_counter() - started, 1),
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--games", type=Path, required=True)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--scored", type=Path, nargs="*", default=[])
    parser.add_argument("--world", default="miniature2")
    parser.add_argument("--no-eval", action="store_true", help="only the scored trajectories")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from sdar_core.models import load_tokenizer
    from sdar_core.train.policy import model_config_dir

    figures: dict = {}
    if not args.no_eval:
        figures["eval"] = evaluations(args.checkpoint, args.games, args.index, args.world)
    tokenizer = load_tokenizer(model_config_dir(args.checkpoint))
    figures["rounds"] = [gap_figures(d, tokenizer) for d in args.scored]
    text = json.dumps(figures, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
