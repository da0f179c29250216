"""The cluster recipe (pipelines/recipes/qwen2.5-3b-alfworld.json): compiling it gives exactly
the committed YAMLs (`make recipes` writes them: a chain of 3 pipelines of 50 rounds and its
manifest, pipelines/chain.py), which together train the 150 rounds with the authors' settings of
the paper's ALFWorld row; a wrong recipe field is refused in one line that names it and the fix."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.images import GPU_IMAGE
from pipelines.recipe import recipe_options
from sdar_core.algos import get_algorithm
from sdar_core.cli import main

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "pipelines" / "recipes"
RECIPE = RECIPES / "qwen2.5-3b-alfworld.json"
ROUNDS = 150  # the authors' trainer.total_epochs=150 over one batch of 16 tasks: 150 iterations
CHUNKS = 3  # runs of 50 rounds: each Argo Workflow well under the budget (pipelines/chain.py)


def committed(algorithm: str) -> list[Path]:
    """The chunk files in order, then the chain's manifest."""
    stem = f"qwen2.5-3b-alfworld-{algorithm}"
    chunks = [RECIPES / f"{stem}-{i}of{CHUNKS}.yaml" for i in range(1, CHUNKS + 1)]
    return [*chunks, RECIPES / f"{stem}.chain.json"]


def specs_of(algorithm: str) -> list[dict]:
    return [
        next(yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader))
        for path in committed(algorithm)[:-1]
    ]


# Compiled by a script file in a fresh interpreter: kfp calls inspect.stack() in every task
# setter, which scans sys.modules once per frame whose file is no module's (`<frozen runpy>`
# under `python -m pytest`, `<string>` under `python -c`), so in-process here the 150-round SDAR
# graph takes ~60 s instead of ~5 s.
_COMPILE = """
import sys
from pipelines.chain import compile_chain
from pipelines.recipe import load_recipe, recipe_options
for algorithm in ("sdar", "grpo"):
    options = recipe_options(sys.argv[1], algorithm=algorithm)
    k = load_recipe(sys.argv[1]).rounds_per_run
    compile_chain(options, f"{sys.argv[2]}/qwen2.5-3b-alfworld-{algorithm}.yaml", rounds_per_run=k)
"""


@pytest.fixture(scope="module")
def recompiled(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("recipes")
    script = out / "compile_recipes.py"
    script.write_text(_COMPILE)
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, script, RECIPE, out], cwd=ROOT, env=env, check=True)
    return out


@pytest.mark.parametrize("algorithm", ["sdar", "grpo"])
def test_compiling_the_recipe_gives_the_committed_yaml(recompiled, algorithm):
    paths = committed(algorithm)
    if GPU_IMAGE not in paths[0].read_text():
        pytest.skip("SDAR_IMAGE_REGISTRY is set; the committed YAMLs use the default registry")
    fresh = sorted(p.name for p in recompiled.glob(f"qwen2.5-3b-alfworld-{algorithm}*"))
    assert fresh == sorted(p.name for p in paths)
    for path in paths:
        assert (recompiled / path.name).read_text() == path.read_text(), (
            f"{path.name}: the recipe or the pipeline changed: run `make recipes` and commit"
        )


@pytest.mark.parametrize("algorithm", ["sdar", "grpo"])
def test_the_committed_yaml_carries_the_authors_settings(algorithm):
    specs = specs_of(algorithm)
    starts = range(0, ROUNDS, ROUNDS // CHUNKS)
    for spec, first in zip(specs, starts, strict=True):
        assert "Base model: Qwen/Qwen2.5-3B-Instruct." in spec["pipelineInfo"]["description"]
        last = first + ROUNDS // CHUNKS - 1
        assert (
            spec["pipelineInfo"]["name"]
            == f"sdar-alfworld-{algorithm}-r{ROUNDS}-rounds-{first}-{last}"
        )
    updates, teachers = [], []
    for spec in specs:
        executors = spec["deploymentSpec"]["executors"]
        gpus = {
            name: int(e["container"]["resources"]["accelerator"]["count"])
            for name, e in executors.items()
            if "accelerator" in e.get("container", {}).get("resources", {})
        }
        updates += [gpus[n] for n in gpus if n.startswith("exec-sdar-update")]
        teachers += [n for n in gpus if n.startswith("exec-score-teacher")]
        assert set(gpus.values()) == {8}  # every model stage uses the node's 8 GPUs
    assert len(updates) == ROUNDS  # the chunks train the 150 rounds
    assert len(teachers) == (ROUNDS if algorithm == "sdar" else 0)
    # every round once, in order, each update told the run's length (the schedule continues)
    rounds = [
        (task["taskInfo"]["name"], task["inputs"]["parameters"]["total_rounds"])
        for spec in specs
        for component in spec["components"].values()
        for task in component.get("dag", {}).get("tasks", {}).values()
        if task["taskInfo"]["name"].endswith(": update")
    ]
    assert sorted(name for name, _ in rounds) == sorted(f"round {r}: update" for r in range(ROUNDS))
    assert {total["runtimeValue"]["constant"] for _, total in rounds} == {ROUNDS}
    spec = specs[0]
    params = spec["root"]["inputDefinitions"]["parameters"]
    config = {
        name: json.loads(params[name]["defaultValue"])
        for name in ("rollout_config", "update_config", "eval_config")
    }
    episode = {"max_steps": 50, "history_length": 2, "max_prompt_tokens": 2048,
               "max_new_tokens": 512}  # fmt: skip
    assert (
        config["rollout_config"].items()
        >= (
            {"n_tasks": 16, "group_size": 8, "temperature": 1.0, "split": "train"} | episode
        ).items()
    )
    assert config["rollout_config"]["backend"] == "vllm"
    assert config["update_config"].items() >= {
        "mini_batch_size": 256, "epochs": 1, "backend": "deepspeed", "zero_stage": 2,
        "dtype": "bfloat16", "gradient_checkpointing": True, "max_grad_norm": 1.0,
    }.items()  # fmt: skip
    assert (
        config["eval_config"].items()
        >= (
            {"n_tasks": 128, "decoding": "sample", "temperature": 0.4, "split": "valid_seen"}
            | episode
        ).items()
    )
    assert ("teacher_config" in params) is (algorithm == "sdar")


@pytest.mark.parametrize("algorithm", ["sdar", "grpo"])
def test_the_presets_hold_the_rest_of_the_authors_row(algorithm):
    """lr, KL, penalty, entropy and SDAR's beta and coefficient come from the presets, not the
    recipe: they are the authors' values for ALFWorld."""
    algo = get_algorithm(algorithm).for_env("alfworld")
    assert (algo.lr, algo.kl_coef, algo.kl_kind) == (1e-6, 0.01, "low_var_kl")
    assert (algo.invalid_action_penalty, algo.entropy_coeff, algo.group_size) == (0.1, 0.001, 8)
    if algorithm == "sdar":
        assert (algo.distill_coef, algo.distill_kwargs) == (0.01, {"beta": 5.0})


def broken_recipe(tmp_path: Path, **changes) -> Path:
    fields = json.loads(RECIPE.read_text())
    for key, value in changes.items():
        stage, _, name = key.partition("__")
        if name:
            fields[stage] = fields[stage] | {name: value}
        else:
            fields[stage] = value
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(fields))
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rollout_config__n_taks": 16}, "rollout_config.n_taks is not a field of "
         "RolloutConfig: did you mean 'n_tasks'?"),
        ({"update_config__zero_stage": 4}, "update_config: invalid UpdateConfig: zero_stage: "),
        ({"eval_config__k": 0}, "eval_config: invalid EvalConfig: k must be >= 1, got 0: set k"),
        ({"update_config__backend": "torch"}, 'set it to "deepspeed" (or num_gpus to 1)'),
        ({"num_gpu": 8}, "'num_gpu' is not a recipe key: did you mean 'num_gpus'?"),
        ({"model": "qwen 3b"}, "is not a hub id: write owner/name"),
    ],
)  # fmt: skip
def test_a_wrong_recipe_field_is_refused_in_one_line(tmp_path, capsys, changes, message):
    path = broken_recipe(tmp_path, **changes)
    out = tmp_path / "p.yaml"
    with pytest.raises(SystemExit) as exit_info:
        main(["compile", str(out), "--recipe", str(path)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    first, *rest = err.splitlines()
    assert first.startswith(f"error: recipe {path}: ") and message in first, first
    assert rest == ["(run with sdar --debug ... for the traceback)"]
    assert not out.exists()


def test_flags_override_the_recipe(tmp_path):
    options = recipe_options(RECIPE, algorithm="grpo", rounds=3, num_gpus=None)
    assert (options.algorithm, options.rounds, options.num_gpus) == ("grpo", 3, 8)
    assert options.stage_configs["update_config"]["mini_batch_size"] == 256
    out = tmp_path / "p.yaml"
    with pytest.raises(SystemExit) as exit_info:
        main(["compile", str(out), "--recipe", str(RECIPE), "--rounds", "2", "--num-gpus", "1"])
    assert exit_info.value.code in (0, None)
    spec = next(yaml.load_all(out.read_text(), Loader=yaml.CSafeLoader))
    assert spec["pipelineInfo"]["name"] == "sdar-alfworld-sdar-r2"
    update = spec["deploymentSpec"]["executors"]["exec-sdar-update"]["container"]["resources"]
    assert update["accelerator"]["count"] == "1"
