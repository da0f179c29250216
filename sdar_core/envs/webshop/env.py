"""WebShop as a `BatchEnv`: a batch of shopping sessions over one catalog.

`make("webshop")` plays the shipped catalog; `make("webshop", data_dir=PATH)` reads the original
WebShop files (see data.py). Each episode is one goal: the search page shows its instruction,
model text is projected onto `search[…]` / `click[…]` (projection.py) and applied to the session
(pages.py). Only `click[buy now]` ends an episode early. Its training reward is, by default,
`reward_scale` when the WebShop score (reward.py) is exactly 1 and 0 otherwise, as the authors
train (`training_reward="success"`); `training_reward="score"` gives `reward_scale` × the score
in [0, 1]. Every other step gives 0. Success (`info["won"]`) is a score of 1.0, and the score
itself is always reported (`webshop_reward`).

Info per step, besides the base keys: `available_actions`, `page`, `action`, `invalid_reason`,
`goal` (instruction, attributes, options and price limit: what a scripted buyer reads; not
the target product), `bought`, `webshop_reward` (the score in [0, 1] on the buying step, else
None) and `reward_breakdown` (its parts, on the buying step). `task_type` is the goal's
category (beauty, fashion, food, furniture, electronics in the original data).

The base class ends an episode only on a win or at the step limit; a purchase that is not a win
must end the episode too, so this class marks the buying step done (and not truncated).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from sdar_core.envs.base import BatchEnv, EpisodeHistory, EpisodeStart, StepOutcome
from sdar_core.envs.webshop.config import WebshopConfig
from sdar_core.envs.webshop.data import Catalog, load_catalog
from sdar_core.envs.webshop.matching import noun_extractor
from sdar_core.envs.webshop.pages import ShopSession
from sdar_core.envs.webshop.projection import project_action
from sdar_core.envs.webshop.prompts import build_messages
from sdar_core.envs.webshop.reward import webshop_reward_breakdown
from sdar_core.envs.webshop.search import ProductSearch

__all__ = ["WebshopEnv", "goal_view", "load_shop"]


@lru_cache(maxsize=4)
def load_shop(
    data_dir: Path | None, human_goals: bool, max_products: int | None, seed: int
) -> tuple[Catalog, ProductSearch]:
    """The catalog and its search index, shared by every env made with the same options."""
    catalog = load_catalog(data_dir, human_goals=human_goals, max_products=max_products, seed=seed)
    return catalog, ProductSearch(catalog.products)


def goal_view(goal: dict[str, Any]) -> dict[str, Any]:
    """What a buyer is told about a goal (no target asin)."""
    options = goal["goal_options"]
    return {
        "instruction": goal["instruction_text"],
        "attributes": list(goal["attributes"]),
        "options": list(options.values()) if isinstance(options, dict) else list(options),
        "price_upper": goal["price_upper"],
    }


class WebshopEnv(BatchEnv):
    """A batch of WebShop sessions; see the module docstring."""

    name = "webshop"

    def __init__(self, config: WebshopConfig) -> None:
        super().__init__(max_steps=config.max_steps, seed=config.seed)
        self.config = config
        self.catalog, self._search = load_shop(
            config.data_dir, config.human_goals, config.max_products, config.seed
        )
        n_test = config.test_size(len(self.catalog.goals))
        indices = range(len(self.catalog.goals))
        if config.split == "test":
            indices = range(n_test)
        elif config.split == "train":
            indices = range(n_test, len(self.catalog.goals))
        self._goals = {f"webshop_{i:05d}": self.catalog.goals[i] for i in indices}
        self._task_ids = tuple(sorted(self._goals))
        self._nouns = noun_extractor(config.noun_extractor)
        self._success_reward = config.training_reward == "success"
        self._sessions: dict[int, tuple[str, ShopSession]] = {}

    @property
    def task_ids(self) -> tuple[str, ...]:
        return self._task_ids

    def goal(self, task_id: str) -> dict[str, Any]:
        """The full goal dict of a task (including the target asin)."""
        return self._goals[task_id]

    def _task_type(self, task_id: str) -> str:
        return str(self._goals[task_id]["category"])

    def _info(self, task_id: str, session: ShopSession) -> dict[str, Any]:
        return {
            "available_actions": session.available_actions(),
            "page": session.page,
            "goal": goal_view(self._goals[task_id]),
            "bought": False,
            "webshop_reward": None,
            "reward_breakdown": None,
        }

    def _start(self, slot: int, task_id: str, seed: int) -> EpisodeStart:
        goal = self._goals[task_id]
        session = ShopSession(goal["instruction_text"], self.catalog.products, self._search.search)
        self._sessions[slot] = (task_id, session)
        extra = self._info(task_id, session) | {"action": None, "invalid_reason": None}
        return EpisodeStart(
            observation=session.observation(),
            task_type=self._task_type(task_id),
            task_text=goal["instruction_text"],
            extra=extra,
        )

    def _advance(self, slot: int, text: str) -> StepOutcome:
        task_id, session = self._sessions[slot]
        projection = project_action(
            text,
            session.clickables(),
            has_search_bar=session.has_search_bar,
            require_think=self.config.require_think,
        )
        result = session.act(projection.action) if projection.action is not None else None
        extra = self._info(task_id, session) | {
            "action": projection.action,
            "invalid_reason": projection.invalid_reason,
        }
        score, won = 0.0, False
        if result is not None and result.bought:
            asin = result.asin or ""
            breakdown = webshop_reward_breakdown(
                self._goals[task_id],
                self.catalog.products[asin],
                result.options,
                self.catalog.prices[asin],
                nouns=self._nouns,
            )
            score, won = breakdown.reward, breakdown.reward >= 1.0
            extra |= {
                "bought": True,
                "webshop_reward": score,
                "reward_breakdown": breakdown.as_dict() | {"asin": asin},
            }
        return StepOutcome(
            observation=session.observation(),
            action=projection.action,
            reward=self.config.reward_scale * (float(won) if self._success_reward else score),
            won=won,
            invalid_action=projection.invalid,
            extra=extra,
            ended=result is not None and result.bought,
        )

    def _prompt(self, history: EpisodeHistory, info: dict[str, Any]) -> list[dict[str, str]]:
        return build_messages(
            history, info["available_actions"], history_length=self.config.history_length
        )

    def close(self) -> None:
        self._sessions = {}
