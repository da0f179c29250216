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

_SAMPLED_VALIDATION = {"decoding": "sample", "temperature": 0.4}

PAPER_SETTINGS: dict[str, dict[str, dict[str, Any]]] = {
    "alfworld": {
        "rollout": {"n_tasks": 16, "group_size": 8, "max_steps": 50, "history_length": 2,
                    "max_prompt_tokens": 2048, "max_new_tokens": 512},
        "eval": {"n_tasks": 128, "max_steps": 50, "history_length": 2,
                 "max_prompt_tokens": 2048, "max_new_tokens": 512} | _SAMPLED_VALIDATION,
        "update": {"mini_batch_size": 256},
    },
    "webshop": {
        "rollout": {"n_tasks": 16, "group_size": 8, "max_steps": 15, "history_length": 2,
                    "max_prompt_tokens": 4096, "max_new_tokens": 512},
        "eval": {"n_tasks": 128, "max_steps": 15, "history_length": 2,
                 "max_prompt_tokens": 4096, "max_new_tokens": 512} | _SAMPLED_VALIDATION,
        "update": {"mini_batch_size": 64},
    },
    "search": {
        "rollout": {"n_tasks": 128, "group_size": 8, "max_steps": 4, "history_length": 4,
                    "max_prompt_tokens": 4096, "max_new_tokens": 512},
        "eval": {"n_tasks": 512, "max_steps": 4, "history_length": 4,
                 "max_prompt_tokens": 4096, "max_new_tokens": 512, "decoding": "greedy"},
        "update": {"mini_batch_size": 256, "warmup_ratio": 0.1},
    },
}  # fmt: skip


def paper_fields(env: str, stage: str) -> dict[str, Any]:
    """The authors' fields of stage `stage` ("rollout", "eval", "update") for benchmark `env`."""
    if env not in PAPER_SETTINGS:
        raise ConfigError(
            f"no paper settings for env={env!r}: choose one of {sorted(PAPER_SETTINGS)}"
        )
    return dict(PAPER_SETTINGS[env].get(stage, {}))
