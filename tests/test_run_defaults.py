"""The embedded run's update lr: the tiny models trained from scratch get the embedded lr, a
given (pretrained) model the algorithm's, unless the caller sets one."""

import pytest

from sdar_core.algos import get_algorithm
from sdar_core.run import RunConfig


@pytest.mark.parametrize(
    ("fields", "lr"),
    [
        ({}, 3e-4),  # the miniature's tiny model
        ({"world": "alfworld"}, 1e-4),  # the embedded tiny model
        ({"model": "models/smollm2"}, None),
        ({"model": "models/smollm2", "world": "alfworld"}, None),
        ({"model": "models/smollm2", "update": {"mini_batch_size": 16}}, None),
        ({"model": "models/smollm2", "update": {"lr": 1e-5}}, 1e-5),
        ({"update": {"lr": 2e-4}}, 2e-4),
    ],
)
def test_update_lr_default_follows_the_model(fields, lr):
    config = RunConfig.model_validate(fields)
    assert config.update.lr == lr
    given = fields.get("update", {})
    if "mini_batch_size" in given:
        assert config.update.mini_batch_size == given["mini_batch_size"]


def test_a_pretrained_model_trains_at_the_algorithms_lr():
    config = RunConfig.model_validate({"model": "models/smollm2", "algorithm": "grpo"})
    # UpdateConfig.lr None resolves to the algorithm's lr in sdar_update
    assert config.update.lr is None
    assert get_algorithm("grpo").lr == 1e-6


def test_a_replicate_style_dump_keeps_its_lr():
    base = RunConfig.model_validate({})
    again = RunConfig.model_validate(base.model_dump() | {"model": "ckpt", "warm_start": False})
    assert again.update.lr == base.update.lr == 3e-4
