"""Supervised warm-start: `warmstart_sft(model_dir, games_dir, out_dir, config)` plays the
environment's expert on a game split, turns every expert step into a chat sample (the prompt the
policy would see, the expert's text as the assistant turn, closed by the eos token) and trains on
the assistant tokens only, through the same mini/micro-batch, accumulation, optimizer and
checkpoint code as the RL update (loop.py, engines.py, policy.py).

Only won episodes are kept (the expert wins every verified generated game; an episode it loses is
not a demonstration). `think_words` shortens the expert's thought to its first n words, which
keeps responses short for tiny models; the action is never changed. The expert is chosen by
environment name (`EXPERTS`): ALFWorld's exploring expert, WebShop's scripted buyer, Search-QA's
oracle searcher (over the shipped corpus: questions from foreign data whose gold documents are
not in it get one search with the question, then the gold answer).

With `lora`, the trained adapter is merged into the model and the checkpoint holds full weights
(the adapter beside them in `lora_adapter/`): the warm-started model is the run's start model,
so RL trains a fresh adapter on it and its KL reference (the adapter disabled) is that model, not
the base from before the warm start.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sdar_core.algos import Registry
from sdar_core.errors import SdarError
from sdar_core.train.batch import Sample
from sdar_core.train.config import SFTConfig
from sdar_core.train.engines import is_main_process, make_engine
from sdar_core.train.loop import count_steps, train_loop
from sdar_core.train.objective import sft_loss
from sdar_core.train.policy import (
    PolicyHead,
    load_policy,
    model_config_dir,
    save_checkpoint,
    save_merged_checkpoint,
)
from sdar_core.train.state import seed_global_rng

__all__ = ["EXPERTS", "expert_samples", "expert_transcripts", "shorten_think", "warmstart_sft"]

DEFAULT_SFT_LR = 1e-5
EXPERTS: Registry[Callable[[], Any]] = Registry("expert policy")


@EXPERTS.register("alfworld")
def _alfworld_expert(
    *,
    explore_seed: int | None = None,
    homes_for: Callable[[Any], Any] | None = None,
    detours_for: Callable[[Any], int] | None = None,
) -> Any:
    from sdar_core.envs.alfworld import ExpertPolicy

    return ExpertPolicy(explore_seed=explore_seed, homes_for=homes_for, detours_for=detours_for)


@EXPERTS.register("webshop")
def _webshop_expert() -> Any:
    from sdar_core.envs.webshop import ExpertPolicy

    return ExpertPolicy()


@EXPERTS.register("search")
def _search_expert() -> Any:
    """The oracle over the shipped corpus (it looks up gold document titles only)."""
    from sdar_core.envs.search import OracleSearcher

    return OracleSearcher.from_corpus()


_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)


def shorten_think(text: str, words: int | None) -> str:
    """The text with its thought cut to the first `words` words (None: unchanged)."""
    if words is None:
        return text
    return _THINK.sub(lambda m: "<think>" + " ".join(m[1].split()[:words]) + "</think>", text, 1)


def _make_expert(config: SFTConfig, episode_pass: int, homes_for, detours_for) -> Any:
    """The env's expert for one pass over the games; only ALFWorld's takes the options."""
    factory = EXPERTS.get(config.env)
    if config.env != "alfworld":
        return factory()
    seed = None if config.explore == "ordered" else config.seed * 1_000 + episode_pass
    return factory(explore_seed=seed, homes_for=homes_for, detours_for=detours_for)


def _draw(seed: int, episode_pass: int, task_id: str, what: str = "") -> float:
    """A seeded uniform draw in [0, 1) per episode (and purpose)."""
    key = f"{seed}\x00{episode_pass}\x00{task_id}" + (f"\x00{what}" if what else "")
    digest = hashlib.blake2b(key.encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big") / 2**64


def _with_skills(seed: int, episode_pass: int, task_id: str, fraction: float) -> bool:
    """Whether this episode is played with skills in the prompt: a seeded draw per episode."""
    return fraction > 0.0 and _draw(seed, episode_pass, task_id) < fraction


def _detours(seed: int, episode_pass: int, task_id: str, most: int) -> int:
    """How many untrained detours an episode with skills starts with: 0..most, seeded."""
    return int(_draw(seed, episode_pass, task_id, "detours") * (most + 1)) if most else 0


def _skill_homes(games_dir: Path) -> dict[str, str] | None:
    """What the skills of the games' world state for the expert (miniature: the homes; a
    miniature2 warm-up game states its own, `_game_conventions`)."""
    from sdar_core.envs.alfworld.generator import world_of
    from sdar_core.envs.alfworld.miniature import HOMES, WORLD_NAME

    if world_of(games_dir) != WORLD_NAME:
        return None
    return {obj.lower(): home.lower() for obj, home in HOMES.items()}


def _game_conventions(games_dir: Path, split: str | None, task_id: str) -> dict | None:
    """A miniature2 warm-up game's own conventions: (homes for the expert, its skill), or None
    for a game without them (its skills are retrieved from the index)."""
    from sdar_core.envs.alfworld.miniature2 import read_conventions, skill_for

    found = read_conventions(Path(games_dir) / (split or "") / task_id)
    if found is None:
        return None
    obj, home, place = found["object"], found["home"], found["place"]
    return {
        "homes": {obj.lower(): home.lower()},
        "skill": skill_for(obj, home, place),
    }


def expert_transcripts(
    games_dir: str | os.PathLike[str], config: SFTConfig, *, skills_index: Any = None
) -> list[tuple[list[dict[str, str]], str]]:
    """(prompt messages, expert text) for every step of every won expert episode.

    `episodes_per_task` passes over the games; with `skills_fraction`, a seeded share of the
    episodes carries the retrieved skills in the system message (as the Skill-Prompt student
    and the teacher see them) and its expert acts on what they state."""
    if config.skills_fraction > 0 and skills_index is None:
        raise SdarError(
            f"skills_fraction={config.skills_fraction} needs the skill index: pass it (the "
            "pipeline wires index_skills into the warm start) or set skills_fraction to 0"
        )
    homes = _skill_homes(Path(games_dir)) if config.env == "alfworld" else None
    out: list[tuple[list[dict[str, str]], str]] = []
    for episode_pass in range(config.episodes_per_task):
        out += _expert_pass(games_dir, config, episode_pass, skills_index, homes)
    return out


def _expert_pass(games_dir, config: SFTConfig, episode_pass: int, skills_index, homes) -> list:
    from sdar_core.envs import make, stratified_task_ids
    from sdar_core.skills.context import messages_with_skills

    env = make(
        config.env,
        data_dir=Path(games_dir),
        split=config.split,
        max_steps=config.max_steps,
        history_length=config.history_length,
        seed=config.seed,
    )
    try:
        tasks = list(
            env.task_ids if config.n_tasks is None else stratified_task_ids(env, config.n_tasks)
        )
        if not tasks:
            raise SdarError(f"no games in {games_dir} (split {config.split!r}): generate games")
        skilled = [
            _with_skills(config.seed, episode_pass, t, config.skills_fraction) for t in tasks
        ]
        own = {t: _game_conventions(Path(games_dir), config.split, t) for t in tasks}
        by_task = dict(zip(tasks, skilled, strict=True))
        detours = {  # untrained first moves of each episode with skills
            t: _detours(config.seed, episode_pass, t, config.skill_detours) if s else 0
            for s, t in zip(skilled, tasks, strict=True)
        }

        def homes_for(record):
            task = record.info["task_id"]
            if not by_task[task]:
                return None
            return own[task]["homes"] if own[task] is not None else homes

        policy = _make_expert(
            config, episode_pass, homes_for, lambda record: detours[record.info["task_id"]]
        )
        records = env.reset(task_ids=tasks)
        skills = {  # a game's own skill, or one retrieval with its task sentence as the query
            slot: [own[tasks[slot]]["skill"]]
            if own[tasks[slot]] is not None
            else [
                r.skill
                for r in skills_index.retrieve(
                    records[slot].info.get("task_text") or tasks[slot],
                    k=config.skills_k,
                    include_general=config.include_general,
                )
            ]
            for slot, with_skills in enumerate(skilled)
            if with_skills
        }
        steps: list[list[tuple[list[dict[str, str]], str]]] = [[] for _ in tasks]
        while not all(r.done for r in records):
            prompts = env.prompts()
            texts = [shorten_think(t, config.think_words) for t in policy(records)]
            for slot, messages in enumerate(prompts):
                if messages is None or records[slot].info["step"] < detours[tasks[slot]]:
                    continue  # done, or a detour: played, not trained on
                if slot in skills:
                    messages = messages_with_skills(messages, skills[slot], default_system=None)
                steps[slot].append((messages, texts[slot]))
            records = env.step(texts)
    finally:
        env.close()
    return [
        step for r, episode in zip(records, steps, strict=True) if r.info["won"] for step in episode
    ]


def expert_samples(
    transcripts: Sequence[tuple[list[dict[str, str]], str]], tokenizer: Any
) -> list[Sample]:
    """Chat samples: prompt = rendered messages (assistant turn opened), response = text + eos."""
    from sdar_core.rollout import render_prompt_ids

    samples = []
    for messages, text in transcripts:
        response = tokenizer.encode(text, add_special_tokens=False) + [tokenizer.eos_token_id]
        prompt = render_prompt_ids(tokenizer, messages)
        samples.append(Sample(prompt, response, {"response_mask": [1.0] * len(response)}))
    return samples


def warmstart_sft(
    model_dir: str | os.PathLike[str],
    games_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    config: SFTConfig,
    *,
    skills_index_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Fine-tune on expert steps (module docstring); returns the metrics (also metrics.json).
    `skills_index_dir`: the skill index, needed when `config.skills_fraction` > 0."""
    from sdar_core.models import load_tokenizer

    tokenizer = load_tokenizer(model_config_dir(Path(model_dir)))
    index = None
    if config.skills_fraction > 0 and skills_index_dir is not None:
        from sdar_core.skills import load_index

        index = load_index(skills_index_dir)
    transcripts = expert_transcripts(games_dir, config, skills_index=index)
    samples = expert_samples(transcripts, tokenizer)
    if not samples:
        raise SdarError("the expert won no episode: check the games (sdar gen-games verifies them)")
    seed_global_rng(config.seed, 0)  # a fresh LoRA adapter's weights draw from it
    head = PolicyHead(load_policy(model_dir, config), temperature=1.0, chunk_size=config.chunk_size)
    lr = config.lr or DEFAULT_SFT_LR
    engine = make_engine(head, config, lr=lr, total_steps=count_steps(len(samples), config))
    summary = train_loop(
        engine,
        samples,
        config,
        loss_fn=lambda logprobs, batch, step: sft_loss(logprobs, batch),
        agg_mode="token-mean",
        pad_id=int(tokenizer.pad_token_id),
    )
    metrics = summary | {
        "n_samples": float(len(samples)),
        "n_response_tokens": float(sum(len(s.response_ids) for s in samples)),
        "config": config.model_dump(mode="json"),
    }
    state = engine.state_dict()  # every rank takes part in the ZeRO-3 gather
    if is_main_process() and config.lora:  # the run's start model: full weights (module doc)
        save_merged_checkpoint(
            engine.module.model, state, model_dir, out_dir, metrics, dtype=config.dtype
        )
    elif is_main_process():
        save_checkpoint(engine.module.model, state, model_dir, out_dir, metrics)
    return metrics
