"""The plan `sdar compile` prints (pipelines/plan.py): parameter counts from model shapes, bytes
through artifact storage per round, the estimated round time, and the CLI's output."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.argo_size import WORKFLOW_BUDGET_BYTES, estimate_workflow_bytes
from pipelines.plan import SHAPES, format_plan, model_shape, plan
from pipelines.recipe import load_recipe, recipe_options
from sdar_core.cli import app
from sdar_core.errors import ConfigError

RECIPES = Path(__file__).parents[1] / "pipelines" / "recipes"
PAPER = RECIPES / "qwen2.5-3b-alfworld.json"
PREFLIGHT = RECIPES / "qwen2.5-0.5b-alfworld-preflight.json"
PREFLIGHT_YAML = RECIPES / "qwen2.5-0.5b-alfworld-preflight-sdar.yaml"
P_3B = SHAPES["Qwen/Qwen2.5-3B"].params


@pytest.mark.parametrize(
    ("model", "card_billions"),
    # "Number of Parameters" on each model card (huggingface.co/Qwen/...)
    [("Qwen/Qwen2.5-0.5B", 0.49), ("Qwen/Qwen2.5-1.5B-Instruct", 1.54),
     ("Qwen/Qwen2.5-3B-Instruct", 3.09), ("Qwen/Qwen2.5-7B", 7.61)],
)  # fmt: skip
def test_parameter_counts_match_the_model_cards(model, card_billions):
    assert abs(model_shape(model).params / 1e9 - card_billions) < 0.006


@pytest.mark.transformers
@pytest.mark.parametrize("tied", [True, False])
def test_a_config_folder_counts_what_transformers_builds(tmp_path, tied):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        hidden_size=64, num_hidden_layers=3, intermediate_size=96, vocab_size=300,
        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=tied,
    )  # fmt: skip
    config.save_pretrained(tmp_path)
    model = Qwen2ForCausalLM(config)
    assert model_shape(str(tmp_path)).params == model.num_parameters()


def test_an_unknown_model_has_no_shape_and_a_bad_config_is_refused(tmp_path):
    assert model_shape("someone/other-model") is None
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 8}))
    with pytest.raises(ConfigError, match="has no num_hidden_layers"):
        model_shape(str(tmp_path))


def test_bytes_per_round_before_and_after_weights_only_checkpoints():
    p = plan([(PREFLIGHT_YAML, recipe_options(PAPER))], load_recipe(PAPER).model)
    # before: the checkpoint is bf16 weights 2P + DeepSpeed's module 2P + fp32 master 4P + two
    # fp32 Adam moments 8P = 16P, read by rollouts, teacher, update and written by the update;
    # the start model (2P) is read by the same three; after: the checkpoint is 2P
    before = 3 * 16 * P_3B + 16 * P_3B + 3 * 2 * P_3B
    after = 3 * 2 * P_3B + 2 * P_3B + 3 * 2 * P_3B
    assert sum(t.before_bytes for t in p.transfers) == before
    assert sum(t.after_bytes for t in p.transfers) == after
    assert 215e9 < before < 217e9  # Qwen2.5-3B: ~216 GB per round, ~43 GB after


def test_the_round_time_scales_the_authors_step_by_gpus():
    p = plan([(PREFLIGHT_YAML, recipe_options(PAPER))], "Qwen/Qwen2.5-3B-Instruct")
    times = {t.part: (t.gpus, t.seconds) for t in p.round_time}
    # the paper's recipe: 16 x 8 episodes of 50 steps on 3B, as measured, with every stage on
    # the node's 8 GPUs (half the authors' 4-GPU time)
    assert times == {
        "generation": (8, pytest.approx(425 / 2)),
        "teacher": (8, pytest.approx(260 / 2)),
        "log-probs": (8, pytest.approx(354 / 2)),
        "update": (8, pytest.approx(774 / 2)),
    }
    assert p.round_seconds == pytest.approx((425 + 260 + 354 + 774) / 2)


def test_the_timeouts_leave_room_for_every_recipe_model_and_a_slow_stage_is_flagged():
    for model in SHAPES:  # the paper's recipe with each built-in model: no stage near its timeout
        assert plan([(PREFLIGHT_YAML, recipe_options(PAPER))], model).stages_near_timeout() == []
    p = plan([(PREFLIGHT_YAML, recipe_options(PAPER, num_gpus=1))], "Qwen/Qwen2.5-7B")
    # 7B, update on 1 GPU: (354 + 774) s x 7.62 / 3.09 x 4 = 11,130 s > half of 4 h
    assert p.stages_near_timeout() == ["sdar_update"]
    assert "warning: sdar_update's estimated time is over half its timeout" in format_plan(p)
    assert "timeout per attempt: generate_rollouts 4 h, score_teacher 2 h" in format_plan(p)


def test_grpo_has_no_teacher_in_its_plan():
    options = recipe_options(PAPER, algorithm="grpo")
    p = plan([(PREFLIGHT_YAML, options)], "Qwen/Qwen2.5-3B")
    assert "score_teacher" not in p.stage_gpus
    assert [t.part for t in p.round_time] == ["generation", "log-probs", "update"]
    assert sum(t.before_bytes for t in p.transfers) == (2 * 16 + 16 + 2 * 2) * P_3B


def test_several_runs_are_counted_and_sized_each():
    options = recipe_options(PREFLIGHT)
    p = plan([(PREFLIGHT_YAML, options), (PREFLIGHT_YAML, options)], load_recipe(PREFLIGHT).model)
    assert len(p.runs) == 2 and p.rounds == 4
    size = estimate_workflow_bytes(PREFLIGHT_YAML)
    assert [r.workflow_bytes for r in p.runs] == [size, size]
    assert p.runs[0].budget_share == size / WORKFLOW_BUDGET_BYTES
    # start and end tracking, 2 importers, index skills; 2 evaluations; 2 rounds x 3 stages
    assert p.runs[0].tasks == 5 + 2 + 2 * 3
    with pytest.raises(ConfigError, match="at least one compiled package"):
        plan([])


def test_compile_prints_the_plan_after_the_path(tmp_path):
    out = tmp_path / "p.yaml"
    result = CliRunner().invoke(app, ["compile", str(out), "--recipe", str(PREFLIGHT)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == str(out)
    assert lines[1] == "plan: 1 run(s), 2 round(s) in all"
    assert lines[2].startswith("  run 1: p.yaml: 2 round(s), 13 tasks, Argo Workflow ~")
    assert "GPUs per stage: generate_rollouts 8, score_teacher 8, sdar_update 8, evaluate 8" in (
        result.stdout
    )
    assert "Qwen/Qwen2.5-0.5B-Instruct, 0.49 B parameters" in result.stdout
    assert "ESTIMATED" in result.stdout
    assert "OVER the budget" not in result.stdout


def test_a_run_over_the_budget_is_flagged(monkeypatch):
    import pipelines.plan as plan_module

    options = recipe_options(PREFLIGHT)
    monkeypatch.setattr(plan_module, "_size", lambda docs: WORKFLOW_BUDGET_BYTES + 1)
    text = format_plan(plan([(PREFLIGHT_YAML, options)]))
    assert "(100% of the 900 KiB budget; estimated; OVER the budget" in text


def test_compile_without_a_known_model_says_what_is_missing(tmp_path):
    result = CliRunner().invoke(
        app, ["compile", str(tmp_path / "p.yaml"), "--algorithm", "vanilla"]
    )
    assert result.exit_code == 0, result.output
    assert "unknown model" in result.stdout
    assert "bytes per round" in format_plan(plan([(tmp_path / "p.yaml", recipe_options(PAPER))]))
