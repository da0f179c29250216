"""The update pod's host memory at a resume (issue 20, item 4): the formula of
sdar_core.train.memory, and the 3B recipe's update pods sized from it."""

import json

import pytest

from pipelines import PipelineOptions
from sdar_core.errors import ConfigError
from sdar_core.train.memory import GiB, memory_string, resume_host_bytes
from tests.test_pipeline_compile import compiled, executor, tasks_of
from tests.test_recipes import RECIPE

QWEN25_3B_PARAMS = 3_085_938_688  # Qwen2.5-3B (tied embeddings counted once)


def test_resume_host_bytes_is_ranks_times_base_module_and_shard():
    # 2 ranks, 1000 parameters in bf16 (module 2000 B), shard 12 × 1000 / 2 = 6000 B, base 10
    assert resume_host_bytes(1000, 2, weight_bytes=2, rank_base=10) == 2 * (10 + 2000 + 6000)
    # one rank holds the whole optimizer: 4 B float32 module + 12 B per parameter
    assert resume_host_bytes(1000, 1, weight_bytes=4, rank_base=0) == 16_000
    assert memory_string(113 * GiB) == "113Gi" and memory_string(113 * GiB + 1) == "114Gi"
    with pytest.raises(ValueError, match="n_ranks must be >= 1"):
        resume_host_bytes(1000, 0)


def test_the_3b_recipe_sizes_its_update_pods_for_a_resume(tmp_path):
    recipe = json.loads(RECIPE.read_text())
    needed = resume_host_bytes(QWEN25_3B_PARAMS, recipe["num_gpus"])
    assert recipe["update_config"]["dtype"] == "bfloat16"  # weight_bytes=2 above
    assert int(recipe["update_memory"].removesuffix("Gi")) * GiB >= needed > 64 * GiB
    spec, _, _ = compiled(
        tmp_path, algorithm="grpo", rounds=1, num_gpus=8, update_memory=recipe["update_memory"]
    )
    for task in tasks_of(spec).values():
        resources = executor(spec, task).get("container", {}).get("resources", {})
        if task["componentRef"]["name"].startswith("comp-sdar-update"):
            assert resources["resourceMemoryLimit"] == recipe["update_memory"]
            assert resources["resourceMemoryRequest"] == recipe["update_memory"]
        elif resources:
            assert resources["resourceMemoryLimit"] != recipe["update_memory"]


def test_a_memory_with_decimals_is_refused():
    with pytest.raises(ConfigError, match='update_memory must be whole Mi, Gi or Ti.*"113Gi"'):
        PipelineOptions(algorithm="grpo", update_memory="1.5Ti").check()
