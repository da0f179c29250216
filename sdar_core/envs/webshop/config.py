"""Options of the WebShop environment (one frozen config).

Defaults follow the reference RL setup (verl-agent's WebShop): 15 steps, a history window of 2,
human instructions as goals, the reward ×10 on the buying step, `<think>` required for a valid
step. Splits follow it too: the first `n_test_goals` goals (after the seeded shuffle) are the
test split and the rest the train split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sdar_core.limits import Count, OptionalCount

__all__ = ["SPLITS", "WebshopConfig"]

SPLITS: tuple[str, ...] = ("train", "test")


class WebshopConfig(BaseModel):
    """Everything `make("webshop", **options)` accepts."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    data_dir: Path | None = Field(
        default=None,
        description="folder with the original WebShop files (items_shuffle(_1000).json, "
        "items_ins_v2(_1000).json, items_human_ins.json); None uses the shipped catalog",
    )
    split: Literal["train", "test"] | None = Field(
        default=None, description="goals to play: train, test, or None for every goal"
    )
    n_test_goals: OptionalCount = Field(
        default=None,
        ge=1,
        description="size of the test split; None means the reference's 500, capped at a fifth "
        "of the goals for small catalogs (the shipped one has 250 goals: 50 test, 200 train)",
    )
    human_goals: bool = Field(
        default=True,
        description="goals from items_human_ins.json (True, as the reference evaluates) or "
        "synthetic goals from items_ins_v2.json (one per product and option combination)",
    )
    max_products: OptionalCount = Field(
        default=None,
        ge=1,
        description="load only the first N products (the reference's num_products)",
    )
    max_steps: Count = Field(default=15, ge=1, description="steps before an episode is truncated")
    history_length: Count = Field(default=2, ge=0, description="past steps shown in the prompt")
    reward_scale: float = Field(
        default=10.0, description="the training reward of a buying step is reward_scale × ..."
    )
    training_reward: Literal["success", "score"] = Field(
        default="success",
        description="success: reward_scale when the score is exactly 1, else 0 (the authors' "
        "training reward); score: reward_scale × the score in [0, 1]. The score itself is "
        "always reported (info['webshop_reward'])",
    )
    require_think: bool = Field(
        default=True, description="a step without <think>…</think> is flagged invalid"
    )
    noun_extractor: Literal["auto", "spacy", "heuristic"] = Field(
        default="auto",
        description="nouns for r_type: spaCy with an installed English model, or the heuristic "
        "approximation; auto picks spaCy when a model is installed",
    )
    seed: Count = Field(default=0, description="seeds goal order, price limits and task draws")

    def test_size(self, n_goals: int) -> int:
        """How many goals form the test split for a catalog of `n_goals` goals."""
        if self.n_test_goals is not None:
            return min(self.n_test_goals, n_goals)
        return min(500, n_goals // 5)
