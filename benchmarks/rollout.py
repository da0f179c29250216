"""Benchmark: rollout throughput, teacher-scoring cost, and tokens per episode of the two layouts.

On the tiny model on CPU (its tokenizer is the tiny BPE of `sdar_core.models`, trained on the
procedural corpus: it spends ~1.4x the tokens a Qwen tokenizer would on the same English text, so
absolute counts are larger than with Qwen, ratios much less so):
1. generated tokens per second and environment steps per second for `--tasks x --group` episodes
   (64 by default) of generated ALFWorld games (window prompts, per-step layout);
2. teacher scoring as a ratio of one student log-prob pass over the same samples (the same
   forward-only code, student inputs vs skill-bearing teacher inputs), for the pipeline's
   `TeacherConfig()` defaults and for fewer skills, side by side with the ratio of tokens
   processed (the physical floor: 1x plus the skill tokens). "teacher_stage" adds the teacher's
   own input work (retrieval, skill rendering, tokenisation) to its forward. Next to each time
   ratio is the ratio of forward FLOPs (matmuls; causal attention; LM head on response tokens):
   prefix caching makes the skill *tokens* nearly free, but every later token still attends over
   the skill *keys*, 4·H FLOPs per key per layer against ~2·H·(2H + 3I) for the rest of a token.
   At the tiny model's width (H=128, I=256) 1,000 keys cost more than the whole rest of a token;
   at a real width they do not. So the same samples are also scored (`--wide-samples`, whole
   groups) by a model of Qwen2.5-0.5B's layer shape (H=896, I=4,864, 14/2 heads; 2 layers, random
   weights, the same tokenizer) — per-layer cost, hence the ratio, is that of the real model;
3. tokens processed per episode by the two layouts at 10 and 30 turns, counted exactly on the
   real prompts of episodes played on the engine by a random admissible-action policy, split into
   where they go (system/rules, task, history window, observation, admissible list, template,
   responses). Responses are the one part the policy decides: they are counted at the tiny
   model's measured mean length (random text capped at max_new_tokens) and at
   `--realistic-response-tokens` (an assumption: a reasoning model's short <think> + action).
   Per-step (the reference's layout, history_length=2) = sum over turns of (window prompt +
   response); whole-trajectory = first prompt + every response + every continuation message.

Targets (issue 5): teacher pass <= 1.3x a student pass; whole-trajectory >= 3x fewer tokens than
per-step at 10 turns.

    python benchmarks/rollout.py --repeats 2         # 64 episodes, ~6-9 min on 2 cores
    python benchmarks/rollout.py --tasks 2 --group 2  # quick
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

CATEGORIES = ("system", "task", "history", "observation", "admissible", "rules", "template")


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=8, help="task instances (groups)")
    parser.add_argument("--group", type=int, default=8, help="episodes per task")
    parser.add_argument("--max-steps", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats (best is kept)")
    parser.add_argument("--realistic-response-tokens", type=int, default=150)
    parser.add_argument("--layout-episodes", type=int, default=8, help="30-step random episodes")
    parser.add_argument(
        "--wide-samples", type=int, default=64, help="samples scored at Qwen2.5-0.5B width; 0 skips"
    )
    return parser.parse_args()


def _rollouts(root: Path, args, model: Path, games: Path):
    from sdar_core.rollout import RolloutConfig, generate_rollouts, read_trajectories

    config = RolloutConfig(
        n_tasks=args.tasks,
        group_size=args.group,
        max_steps=args.max_steps,
        max_new_tokens=args.max_new_tokens,
        show_progress=False,
    )
    summary = generate_rollouts(model, games, root / "window", config)
    return summary, read_trajectories(root / "window")


def _teacher_settings():
    from sdar_core.teacher import TeacherConfig

    return {
        "pipeline_defaults": TeacherConfig(show_progress=False),
        "three_skills": TeacherConfig(skills_k=3, show_progress=False),
        "task_skill_only": TeacherConfig(skills_k=1, include_general=False, show_progress=False),
        "no_skills": TeacherConfig(skills_k=0, include_general=False, show_progress=False),
    }


def _best_times(fns: dict, repeats: int) -> dict[str, float]:
    """Best of `repeats` wall times of each function, run interleaved (the CPU is shared)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
    return {name: min(t) for name, t in times.items()}


def _processed_tokens(items, plans, plain) -> tuple[int, float]:
    """Tokens the prefix-cached teacher runs through the model (each shared prefix once), and the
    skill tokens it runs per sample (a group's skills once where its prefix holds them)."""
    tokens = sum(len(items[i].input_ids) for i in plain)
    skills = sum(items[i].n_skill_tokens for i in plain)
    for plan in plans:
        tokens += plan.length + sum(len(items[i].input_ids) - plan.length for i in plan.members)
        shared = min(items[i].n_skill_tokens for i in plan.members)
        if plan.length <= shared:  # the skills do not fit in the prefix: count them per sample
            shared = 0
        skills += shared + sum(items[i].n_skill_tokens - shared for i in plan.members)
    return tokens, skills / len(items)


class _Flops:
    """Forward FLOPs of a causal decoder (2 per multiply-add): per layer and token the
    projections and MLP, plus 4·H per key attended (scores and weighted values), plus the LM head
    on scored (response) tokens. Ideal causal attention, no padding: a floor, not a profile."""

    def __init__(self, config) -> None:
        h, i = config.hidden_size, config.intermediate_size
        kv = config.num_key_value_heads * (h // config.num_attention_heads)
        self.layers, self.h = config.num_hidden_layers, h
        self.per_token = 2 * h * (2 * h + 2 * kv) + 6 * h * i
        self.head = 2 * h * config.vocab_size

    def run(self, start: int, end: int) -> float:
        """Tokens at positions start..end-1, each attending to every earlier position."""
        keys = (end * (end + 1) - start * (start + 1)) / 2
        return self.layers * ((end - start) * self.per_token + 4 * self.h * keys)

    def plain(self, sequences) -> float:
        return sum(self.run(0, len(ids)) + self.head * (len(ids) - r) for ids, r in sequences)

    def cached(self, sequences, plans, plain) -> float:
        """Each plan's prefix once, then its members' remainders; the rest whole."""
        total = self.plain([sequences[i] for i in plain])
        for plan in plans:
            total += self.run(0, plan.length)
            for ids, r in (sequences[i] for i in plan.members):
                total += self.run(plan.length, len(ids)) + self.head * (len(ids) - r)
        return total


def _teacher_ratios(model_dir: Path, rows, index_dir: Path, repeats: int, *, plain=True) -> dict:
    """Teacher vs student pass for each setting of `_teacher_settings`: prefix-cached and (with
    `plain`) scoring every sample whole; time, tokens and FLOPs as ratios of the student's."""
    from functools import partial

    from sdar_core.models import load_model, load_tokenizer
    from sdar_core.skills import load_index
    from sdar_core.teacher import (
        build_items,
        plan_prefixes,
        prefix_cached_logprobs,
        response_logprobs,
        retrieve_group_skills,
    )

    tokenizer = load_tokenizer(model_dir)
    model = load_model(model_dir, dtype="float32")
    flops = _Flops(model.config)
    index = load_index(index_dir)
    pairs = zip(rows["prompt_ids"], rows["response_ids"], strict=True)
    student = [(p + r, len(p)) for p, r in pairs]
    student_tokens = sum(len(ids) for ids, _ in student)
    student_flops = flops.plain(student)
    groups = rows["group_id"]
    report = {
        "model": {
            k: getattr(model.config, k)
            for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "vocab_size")
        },
        "samples": len(student),
        "groups": len(set(groups)),
        "student_tokens_per_sample": student_tokens / len(student),
    }
    for name, config in _teacher_settings().items():
        common = dict(
            temperature=1.0, batch_tokens=config.batch_tokens, pad_id=tokenizer.pad_token_id
        )
        score = partial(response_logprobs, model, **common)

        def inputs(config=config):  # the teacher's own work before its forward
            skills = retrieve_group_skills(index, rows, config, tokenizer)
            return build_items(rows, skills, tokenizer, max_prompt_tokens=config.max_prompt_tokens)

        items = inputs()
        teacher = [(i.input_ids, i.response_start) for i in items]
        cached = partial(
            prefix_cached_logprobs,
            model,
            teacher,
            groups,
            min_prefix_tokens=config.min_prefix_tokens,
            **common,
        )
        passes = {"student": partial(score, student), "teacher_prefix_cached": cached}
        if plain:
            passes["teacher_plain"] = partial(score, teacher)
        best = _best_times(passes | {"inputs": inputs}, repeats)
        plans = plan_prefixes(teacher, groups, min_prefix_tokens=config.min_prefix_tokens)
        processed, amortised = _processed_tokens(items, *plans)
        entry = {
            "skill_tokens_per_sample": statistics.mean(i.n_skill_tokens for i in items),
            "amortised_skill_tokens_per_sample": amortised,
            "student_pass_s": best["student"],
            "teacher_inputs_s": best["inputs"],
            "prefix_cached": {
                "time_ratio": best["teacher_prefix_cached"] / best["student"],
                "token_ratio": processed / student_tokens,
                "flop_ratio": flops.cached(teacher, *plans) / student_flops,
                "stage_time_ratio": (best["teacher_prefix_cached"] + best["inputs"])
                / best["student"],
            },
        }
        if plain:
            entry["plain"] = {
                "time_ratio": best["teacher_plain"] / best["student"],
                "token_ratio": sum(len(ids) for ids, _ in teacher) / student_tokens,
                "flop_ratio": flops.plain(teacher) / student_flops,
            }
        report[name] = entry
    return report


WIDE = dict(  # Qwen2.5-0.5B's layer shape (its config.json), 2 of its 24 layers
    hidden_size=896,
    intermediate_size=4864,
    num_attention_heads=14,
    num_key_value_heads=2,
    num_hidden_layers=2,
)


def _whole_groups(rows, n: int):
    """The first samples of `rows` (a datasets.Dataset) that make whole groups, at least n."""
    order = {g: k for k, g in enumerate(dict.fromkeys(rows["group_id"]))}
    keep, count = set(), 0
    for group, _ in sorted(order.items(), key=lambda item: item[1]):
        if count >= n:
            break
        keep.add(group)
        count += sum(1 for g in rows["group_id"] if g == group)
    return rows.filter(lambda row: row["group_id"] in keep)


def _wide_teacher_ratios(root: Path, rows, index_dir: Path, args) -> dict:
    """`_teacher_ratios` on a model of real width: the same token ids (same tokenizer)."""
    from sdar_core.models import TinyModelConfig, build_tiny_model

    model = build_tiny_model(root / "wide", config=TinyModelConfig(**WIDE))
    subset = _whole_groups(rows, args.wide_samples)
    return _teacher_ratios(model, subset, index_dir, args.repeats, plain=False)


FORMS = ("full", "delta")  # admissible actions in full-chat continuations


def _play_random(games: Path, n: int, steps: int) -> list[list[tuple[list, dict]]]:
    """Per episode, per step: (window messages, {form: full-chat messages}) on the real engine."""
    from sdar_core.envs import make
    from sdar_core.envs.alfworld import RandomPolicy

    env = make("alfworld", data_dir=games, split="train", max_steps=steps, history_length=2)
    policy, tasks = RandomPolicy(seed=0), env.task_ids
    try:
        records = env.reset(task_ids=[tasks[i % len(tasks)] for i in range(n)])
        played: list[list[tuple[list, dict]]] = [[] for _ in range(n)]
        while not all(r.done for r in records):
            chats = {form: env.chat_prompts(admissible_in_continuation=form) for form in FORMS}
            for slot, window in enumerate(env.prompts()):
                if window is not None:
                    played[slot].append((window, {f: c[slot] for f, c in chats.items()}))
            records = env.step(policy(records))
    finally:
        env.close()
    return played


_PART_PREFIXES = (
    ("Your task is to:", "task"),
    ("You have", "history"),
    ("Now, at step", "observation"),
    ("Admissible actions:", "admissible"),
    ("Admissible actions now:", "admissible"),
)


def _count_parts(tokenizer, content: str, total: int) -> dict[str, int]:
    """Tokens of each "\n\n"-separated part of a user message; `template` is the rest of total."""
    counts = dict.fromkeys(CATEGORIES, 0)
    for part in content.split("\n\n"):
        name = next((n for prefix, n in _PART_PREFIXES if part.startswith(prefix)), "rules")
        counts[name] += len(tokenizer.encode(part, add_special_tokens=False))
    counts["template"] = total - sum(counts.values())
    return counts


def _prompt_counts(tokenizer, messages, system_ids: int) -> dict[str, int]:
    from sdar_core.rollout.tokens import render_prompt_ids

    total = len(render_prompt_ids(tokenizer, messages))
    counts = _count_parts(tokenizer, messages[-1]["content"], total - system_ids)
    return counts | {"system": system_ids}


def _episode_counts(tokenizer, steps, turns: int, response: float, form: str) -> dict[str, dict]:
    """Tokens by category of one episode's first `turns` turns in the two layouts."""
    from sdar_core.rollout.tokens import TurnDelta

    system = steps[0][0][0]
    system_ids = len(
        tokenizer.apply_chat_template([system], tokenize=True, return_dict=False)
    )  # the system turn with its template tokens
    delta = TurnDelta(tokenizer)
    per_step = dict.fromkeys((*CATEGORIES, "responses"), 0.0)
    whole = dict(per_step) | _prompt_counts(tokenizer, steps[0][1][form], system_ids)
    for t, (window, chats) in enumerate(steps[:turns]):
        for name, n in _prompt_counts(tokenizer, window, system_ids).items():
            per_step[name] += n
        per_step["responses"] += response
        whole["responses"] += response
        if t > 0:  # the continuation message with its template delta
            content = chats[form][-1]["content"]
            total = len(delta.ids([], content))
            for name, n in _count_parts(tokenizer, content, total).items():
                whole[name] += n
    return {"per_step": per_step, "whole_trajectory": whole}


def _layout_tokens(tokenizer, played, turns: int, response: float, form: str) -> dict:
    episodes = [steps for steps in played if len(steps) >= turns]
    counts = [_episode_counts(tokenizer, steps, turns, response, form) for steps in episodes]
    out: dict = {"episodes": len(episodes), "response_tokens_per_turn": response}
    for layout in ("per_step", "whole_trajectory"):
        parts = {k: statistics.mean(c[layout][k] for c in counts) for k in counts[0][layout]}
        out[layout] = {"total": sum(parts.values())} | {k: round(v, 1) for k, v in parts.items()}
    out["ratio"] = out["per_step"]["total"] / out["whole_trajectory"]["total"]
    return out


def main() -> None:
    args = _parse()
    from sdar_core.envs.alfworld import generate_games
    from sdar_core.models import build_tiny_model, load_tokenizer
    from sdar_core.skills import build_index, bundled_skills_dir

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = build_tiny_model(root / "model")
        tokenizer = load_tokenizer(model)
        games = root / "games"
        generate_games(games, n_train=args.tasks, n_valid_seen=0, n_valid_unseen=0, seed=0)
        index = build_index(bundled_skills_dir("alfworld"), root / "index", dense=False)
        summary, rows = _rollouts(root, args, model, games)
        measured = statistics.mean(len(r) for r in rows["response_ids"])
        played = _play_random(games, args.layout_episodes, 30)
        layouts = {
            f"admissible_{form}": {
                f"{turns}_turns_{label}": _layout_tokens(tokenizer, played, turns, response, form)
                for turns in (10, 30)
                for label, response in (
                    ("tiny_model_responses", measured),
                    ("realistic_responses", args.realistic_response_tokens),
                )
            }
            for form in FORMS
        }
        report = {
            "tokenizer": f"tiny BPE of sdar_core.models ({len(tokenizer)} tokens)",
            "episodes": summary["n_episodes"],
            "env_steps": summary["n_turns"],
            "rollout_seconds": summary["seconds"],
            "generated_tokens_per_second": summary["generated_tokens_per_second"],
            "env_steps_per_second": summary["env_steps_per_second"],
            "teacher": _teacher_ratios(model, rows, index, args.repeats),
            "teacher_at_qwen_0.5b_width": (
                _wide_teacher_ratios(root, rows, index, args) if args.wide_samples else None
            ),
            "tokens_per_episode": layouts,
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
