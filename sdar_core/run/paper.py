"""The authors' per-benchmark settings (ZJU-REAL/SDAR `examples/*_trainer/run_*_3b.sh`, read
2026-12), as stage-config fields: what a cluster run of the paper's rows uses, and what the
embedded run scales down.

| | ALFWorld | WebShop | Search-QA |
|---|---|---|---|
| rollout: tasks per round × group | 16 × 8 | 16 × 8 | 128 × 8 |
| steps / history in the prompt | 50 / 2 | 15 / 2 | 4 / 4 |
| prompt / response tokens | 2048 / 512 | 4096 / 512 | 4096 / 512 |
| validation | 128 tasks, sampled at 0.4 | 128 tasks, sampled at 0.4 | 512 tasks, greedy |
| samples per optimizer step | 256 | 64 | 256 |
| lr warm-up | none | none | 10% of training |

The KL coefficient (Search 0.001) and the invalid-action penalty (Search 0.01) are the presets'
per-environment overrides (sdar_core.algos.presets); WebShop's training reward (10 for a score of
exactly 1, else 0) is the WebShop environment's default. Greedy validation stays a choice: set
`decoding="greedy"` in the evaluation config.
"""

from __future__ import annotations

from typing import Any

from sdar_core.errors import ConfigError

__all__ = ["PAPER_SETTINGS", "paper_fields"]


def _settings(
    *, tasks: int, steps: int, history: int, prompt: int, val_tasks: int, val: dict, mini: int
) -> dict[str, dict[str, Any]]:
    episode = {"max_steps": steps, "history_length": history, "max_prompt_tokens": prompt,
               "max_new_tokens": 512}  # fmt: skip
    return {
        "rollout": {"n_tasks": tasks, "group_size": 8} | episode,
        "eval": {"n_tasks": val_tasks} | episode | val,
        "update": {"mini_batch_size": mini},
    }


_SAMPLED = {"decoding": "sample", "temperature": 0.4}
_GREEDY = {"decoding": "greedy"}

PAPER_SETTINGS: dict[str, dict[str, dict[str, Any]]] = {
    "alfworld": _settings(
        tasks=16, steps=50, history=2, prompt=2048, val_tasks=128, val=_SAMPLED, mini=256
    ),
    "webshop": _settings(
        tasks=16, steps=15, history=2, prompt=4096, val_tasks=128, val=_SAMPLED, mini=64
    ),
    "search": _settings(
        tasks=128, steps=4, history=4, prompt=4096, val_tasks=512, val=_GREEDY, mini=256
    ),
}
PAPER_SETTINGS["search"]["update"]["warmup_ratio"] = 0.1


def paper_fields(env: str, stage: str) -> dict[str, Any]:
    """The authors' fields of stage `stage` ("rollout", "eval", "update") for benchmark `env`."""
    if env not in PAPER_SETTINGS:
        raise ConfigError(
            f"no paper settings for env={env!r}: choose one of {sorted(PAPER_SETTINGS)}"
        )
    return dict(PAPER_SETTINGS[env].get(stage, {}))
