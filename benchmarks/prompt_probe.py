"""Which prompt can a small instruct model follow? One ALFWorld turn per prompt variant.

Plays the first turn of N validation games (greedy) under each prompt variant and prints, per
variant: the share of texts in the answer format (a `<think>` and an `<action>` block: the
reference's validity check), the share the environment accepts (format and an admissible
command: our invalid-action flag), how many distinct commands were chosen, and how many copy the
demonstration's command. The variants:

- `sdar`: the environment's own prompt (system rules, user state; what every stage uses);
- `rules-last`: one user message, state first and the format rules after it, no system message
  (the layout of the reference's templates, in our words);
- `sdar+demo`: `sdar` after one worked demonstration exchange (a different, tiny room);
- each also with `+think`: the assistant turn is opened with "<think>" (continue_final_message),
  so the model only has to continue the format. The prefix counts as part of the text.

The model must be a folder with a chat template (`sdar import-model smollm2 DIR`). Usage:

    python benchmarks/prompt_probe.py MODEL_DIR [--games GAMES] [--n-tasks 12]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

DEMO_STATE = (
    "Your task is to: put a mug in coffeemachine.\n\nYou have not acted yet.\n\nNow, at step 1, "
    "you observe: You are in the middle of a room. Looking quickly around you, you see a "
    "cabinet 1, a coffeemachine 1, a countertop 1, and a sinkbasin 1.\n\nAdmissible actions: "
    "['go to cabinet 1', 'go to coffeemachine 1', 'go to countertop 1', 'go to sinkbasin 1', "
    "'inventory', 'look']\n\nThink inside <think> </think>, then answer with one action inside "
    "<action> </action>."
)
DEMO_COMMAND = "go to countertop 1"
DEMO_ANSWER = f"<think>Mugs are usually on a countertop.</think><action>{DEMO_COMMAND}</action>"


def rules_last(messages: list[dict], info: dict) -> list[dict]:
    actions = ", ".join(info["admissible_actions"])
    state = messages[-1]["content"].split("\n\nAdmissible actions:")[0]
    return [
        {
            "role": "user",
            "content": (
                f"You are an agent in a text household (ALFWorld).\n{state}\n"
                f"The actions you can take now: [{actions}].\n\nYour turn. First reason step by "
                "step inside <think> </think> tags. Then write one of the actions above inside "
                "<action> </action> tags."
            ),
        }
    ]


def with_demo(messages: list[dict], info: dict) -> list[dict]:
    return [
        messages[0],
        {"role": "user", "content": DEMO_STATE},
        {"role": "assistant", "content": DEMO_ANSWER},
        *messages[1:],
    ]


VARIANTS = {
    "sdar": lambda messages, info: list(messages),
    "rules-last": rules_last,
    "sdar+demo": with_demo,
}


def render(tokenizer, messages: list[dict], prefix: str) -> list[int]:
    from sdar_core.rollout import render_prompt_ids

    if not prefix:
        return render_prompt_ids(tokenizer, messages)
    opened = [*messages, {"role": "assistant", "content": prefix}]
    text = tokenizer.apply_chat_template(opened, continue_final_message=True, tokenize=False)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def main() -> None:
    from sdar_core.envs import make
    from sdar_core.envs.alfworld import generate_games
    from sdar_core.envs.alfworld.projection import project_action
    from sdar_core.envs.tags import all_blocks, first_block
    from sdar_core.evaluation.evaluate import validation_tasks
    from sdar_core.evaluation.policies import greedy_generate
    from sdar_core.models import load_model, load_tokenizer
    from sdar_core.rollout.backends.hf import stop_token_ids_of

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--games", type=Path, default=Path("runs/prompt_probe/games"))
    parser.add_argument("--n-tasks", type=int, default=12)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()
    if not (args.games / "manifest.json").is_file():
        generate_games(args.games, n_train=1, n_valid_seen=args.n_tasks, n_valid_unseen=0)
    model = load_model(args.model_dir, dtype="float32", device="cpu").eval()
    tokenizer = load_tokenizer(args.model_dir)
    stop_ids = stop_token_ids_of(tokenizer, model)
    env = make("alfworld", data_dir=args.games, split="valid_seen", max_steps=5, seed=0)
    records = env.reset(task_ids=validation_tasks(env, args.n_tasks))
    messages = env.prompts()
    env.close()
    n = len(records)
    print(f"{n} ALFWorld games, first turn, greedy, {args.max_new_tokens} new tokens")
    print("| prompt | in format | accepted | distinct commands | demo's command | seconds |")
    print("|---|---|---|---|---|---|")
    for name, build in VARIANTS.items():
        for prefix in ("", "<think>"):
            started = time.perf_counter()
            prompts = [
                render(tokenizer, build(list(m), r.info), prefix)
                for m, r in zip(messages, records, strict=True)
            ]
            rows = greedy_generate(
                model,
                prompts,
                max_new_tokens=args.max_new_tokens,
                stop_token_ids=stop_ids,
                pad_token_id=tokenizer.pad_token_id,
            )
            texts = [prefix + tokenizer.decode(row, skip_special_tokens=True) for row in rows]
            formatted = sum(
                bool(all_blocks(t, "action")) and first_block(t, "think") is not None for t in texts
            )
            projections = [
                project_action(t, r.info["admissible_actions"])
                for t, r in zip(texts, records, strict=True)
            ]
            accepted = sum(not p.invalid for p in projections)
            commands = [p.action for p in projections if p.action is not None]
            label = name + ("+think" if prefix else "")
            print(
                f"| {label} | {formatted}/{n} | {accepted}/{n} | {len(set(commands))} | "
                f"{commands.count(DEMO_COMMAND)}/{n} | {time.perf_counter() - started:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
