"""The embedded run's LoRA default: a given (pretrained) model trained on CPU trains LoRA
adapters in the warm start and the updates, the tiny models train all weights; an explicit
`lora` (the run's or a stage's own) wins."""

import pytest
from typer.testing import CliRunner

from sdar_core.run import RunConfig

SMOLLM2 = "models/smollm2"


def stage_lora(config: RunConfig) -> tuple[bool, bool]:
    return config.sft.lora, config.update.lora


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, (False, False)),  # the miniature's tiny model
        ({"world": "alfworld"}, (False, False)),
        ({"model": SMOLLM2}, (True, True)),
        ({"model": SMOLLM2, "world": "alfworld"}, (True, True)),
        ({"model": SMOLLM2, "lora": False}, (False, False)),  # full fine-tuning on request
        ({"lora": True}, (True, True)),  # the tiny model with adapters on request
        ({"model": SMOLLM2, "update": {"device": "cuda"}}, (True, False)),
        ({"model": SMOLLM2, "sft": {"device": "cuda:0"}}, (False, True)),
        ({"model": SMOLLM2, "update": {"lora": False}}, (True, False)),  # a stage's own wins
        ({"model": SMOLLM2, "lora": False, "sft": {"lora": True}}, (True, False)),
    ],
)
def test_lora_default_follows_the_model_and_device(fields, expected):
    assert stage_lora(RunConfig.model_validate(fields)) == expected


def test_the_lora_default_keeps_the_other_stage_fields():
    config = RunConfig.model_validate({"model": SMOLLM2, "sft": {"epochs": 2, "lora_rank": 4}})
    assert config.sft.lora and config.sft.epochs == 2 and config.sft.lora_rank == 4
    assert config.sft.max_steps == 12  # the miniature's own warm-start field is kept


def test_a_dump_validated_again_keeps_its_lora():
    config = RunConfig.model_validate({"model": SMOLLM2})
    again = RunConfig.model_validate(config.model_dump() | {"model": "ckpt"})
    assert stage_lora(again) == (True, True)
    assert stage_lora(config.with_seed(3)) == (True, True)
    tiny = RunConfig.model_validate({})
    assert stage_lora(RunConfig.model_validate(tiny.model_dump() | {"model": "ckpt"})) == (
        False,
        False,
    )


@pytest.mark.parametrize(("flag", "expected"), [([], True), (["--no-lora"], False)])
def test_sdar_run_lora_flag(monkeypatch, flag, expected):
    from sdar_core import cli_run

    seen = {}

    class Stop(Exception):
        pass

    def fake_pipelines(module):
        class Module:
            class StageFailed(Exception):
                pass

            @staticmethod
            def run_local(config):
                seen["config"] = config
                raise Stop

        return Module

    monkeypatch.setattr(cli_run, "pipelines", fake_pipelines)
    from sdar_core.cli import app

    result = CliRunner().invoke(app, ["run", "--model", SMOLLM2, *flag])
    assert isinstance(result.exception, Stop), result.output
    assert stage_lora(seen["config"]) == (expected, expected)
