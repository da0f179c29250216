"""The preflight recipe (pipelines/recipes/qwen2.5-0.5b-alfworld-preflight.json): the paper's
row in miniature, to run before it. Compiling it gives exactly the committed YAMLs, and they take
every path the 3B recipe takes: vLLM rollouts, the teacher, an 8-GPU DeepSpeed update whose
round 1 resumes round 0's optimizer state, the importers, MLflow, the exit handler; and both
recipes recompute the old log-probs with the training engine (the cluster profile's numerics)."""

import json
from pathlib import Path

import pytest
import yaml

from components.images import GPU_IMAGE
from pipelines import compile_pipeline
from pipelines.recipe import load_recipe, recipe_options

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "pipelines" / "recipes"
PREFLIGHT = RECIPES / "qwen2.5-0.5b-alfworld-preflight.json"


def committed(algorithm: str) -> Path:
    return RECIPES / f"qwen2.5-0.5b-alfworld-preflight-{algorithm}.yaml"


def spec_of(path: Path) -> dict:
    return next(yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader))


@pytest.mark.parametrize("algorithm", ["sdar", "grpo"])
def test_compiling_the_preflight_gives_the_committed_yaml(tmp_path, algorithm):
    text = committed(algorithm).read_text()
    if GPU_IMAGE not in text:
        pytest.skip("SDAR_IMAGE_REGISTRY is set; the committed YAMLs use the default registry")
    fresh = compile_pipeline(recipe_options(PREFLIGHT, algorithm=algorithm), tmp_path / "p.yaml")
    assert fresh.read_text() == text, "the recipe or the pipeline changed: run `make recipes`"


def test_the_preflight_is_the_papers_row_in_miniature():
    preflight, paper = load_recipe(PREFLIGHT), load_recipe(RECIPES / "qwen2.5-3b-alfworld.json")
    assert preflight.model == "Qwen/Qwen2.5-0.5B-Instruct"
    assert (preflight.rounds, preflight.num_gpus) == (2, 8)
    assert (preflight.rollout_config["n_tasks"], preflight.rollout_config["group_size"]) == (2, 2)
    # every setting that picks a code path is the paper recipe's
    for stage in ("rollout_config", "teacher_config", "update_config", "eval_config"):
        mine, theirs = getattr(preflight, stage), getattr(paper, stage)
        for field in ("backend", "device", "dtype", "zero_stage", "gradient_checkpointing"):
            assert mine.get(field) == theirs.get(field), f"{stage}.{field}"
    assert (preflight.algorithm, preflight.env, preflight.profile) == (
        paper.algorithm, paper.env, paper.profile
    )  # fmt: skip


def test_the_compiled_preflight_takes_every_path_of_the_cluster_run():
    spec = spec_of(committed("sdar"))
    assert "Base model: Qwen/Qwen2.5-0.5B-Instruct." in spec["pipelineInfo"]["description"]
    executors = spec["deploymentSpec"]["executors"]
    gpus = {
        name.rstrip("-0123456789"): int(e["container"]["resources"]["accelerator"]["count"])
        for name, e in executors.items()
        if "accelerator" in e.get("container", {}).get("resources", {})
    }
    assert gpus == {
        "exec-generate-rollouts": 8, "exec-score-teacher": 8, "exec-sdar-update": 8,
        "exec-evaluate": 8,
    }  # fmt: skip
    assert sum(n.startswith("exec-sdar-update") for n in executors) == 2
    assert sum(n.startswith("exec-importer") for n in executors) == 2  # model and games
    assert "exec-end-tracking" in executors  # the exit handler ends the MLflow run
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["mlflow_tracking_uri"]["defaultValue"].startswith("http://mlflow.")
    rollout = json.loads(params["rollout_config"]["defaultValue"])
    update = json.loads(params["update_config"]["defaultValue"])
    assert rollout["backend"] == "vllm" and update["backend"] == "deepspeed"
    assert update["trainer_state"] == "resume"  # round 1 resumes round 0's optimizer state


@pytest.mark.parametrize(
    "compiled", ["qwen2.5-0.5b-alfworld-preflight-{}.yaml", "qwen2.5-3b-alfworld-{}-1of3.yaml"]
)  # the 3B recipe is a chain of runs (pipelines/chain.py): its first
def test_cluster_recipes_recompute_old_logprobs_with_the_training_engine(compiled):
    for algorithm in ("sdar", "grpo"):
        spec = spec_of(RECIPES / compiled.format(algorithm))
        update = json.loads(
            spec["root"]["inputDefinitions"]["parameters"]["update_config"]["defaultValue"]
        )
        assert update["recompute_old_logprobs"] is True
        # the teacher scores with the HF model in the update's dtype, not vLLM's kernels
        params = spec["root"]["inputDefinitions"]["parameters"]
        if "teacher_config" in params:
            teacher = json.loads(params["teacher_config"]["defaultValue"])
            assert teacher.get("backend", "hf") == "hf"
            assert teacher["dtype"] == update["dtype"] == "bfloat16"
