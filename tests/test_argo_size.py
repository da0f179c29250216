"""The Argo Workflow size estimator (pipelines/argo_size.py) against the KFP backend's own
compiled workflows (tests/data/argo/README.md), and every committed recipe under the budget."""

from pathlib import Path

import pytest
import yaml

from pipelines.argo_size import WORKFLOW_BUDGET_BYTES, estimate_workflow_bytes, go_json
from sdar_core.errors import ConfigError

DATA = Path(__file__).parent / "data" / "argo"
PAIRS = sorted(p.name.removesuffix(".ir.yaml") for p in DATA.glob("*.ir.yaml"))
RECIPES = sorted((Path(__file__).parents[1] / "pipelines" / "recipes").glob("*.yaml"))
# the 150-round recipes are chains of 3 runs (pipelines/chain.py): every chunk file is here


def stored_bytes(workflow: Path) -> int:
    """The golden Workflow's size as the cluster stores it: Go's compact JSON."""
    return len(go_json(yaml.safe_load(workflow.read_text())).encode())


def test_the_examples_are_there():
    assert len(PAIRS) >= 8


@pytest.mark.parametrize("name", PAIRS)
def test_estimate_is_within_two_percent_of_the_backends_workflow(name):
    real = stored_bytes(DATA / f"{name}.workflow.yaml")
    estimate = estimate_workflow_bytes(DATA / f"{name}.ir.yaml", api_server=False)
    assert abs(estimate / real - 1) < 0.02, (estimate, real)


def test_the_api_servers_additions_count_a_little(tmp_path):
    ir = DATA / "pipeline_with_exit_handler.ir.yaml"
    compiler_only = estimate_workflow_bytes(ir, api_server=False)
    assert 0 < estimate_workflow_bytes(ir) - compiler_only < 1024


def test_loaded_documents_and_a_path_give_the_same_estimate():
    ir = DATA / "pipeline_with_retry.ir.yaml"
    docs = list(yaml.safe_load_all(ir.read_text()))
    assert estimate_workflow_bytes(docs) == estimate_workflow_bytes(ir)
    assert estimate_workflow_bytes(docs) == estimate_workflow_bytes(docs)  # docs left unchanged


def test_go_json_escapes_as_go_does():
    assert go_json({"a": "x && y <b>", "f": 2.0, "g": 0.5}) == (
        '{"a":"x \\u0026\\u0026 y \\u003cb\\u003e","f":2,"g":0.5}'
    )


def test_a_missing_or_wrong_package_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="no compiled pipeline"):
        estimate_workflow_bytes(tmp_path / "missing.yaml")
    (tmp_path / "x.yaml").write_text("a: 1\n")
    with pytest.raises(ConfigError, match="not a compiled KFP pipeline"):
        estimate_workflow_bytes(tmp_path / "x.yaml")


@pytest.mark.parametrize("recipe", RECIPES, ids=[p.name for p in RECIPES])
def test_every_committed_recipe_is_under_the_budget(recipe):
    assert estimate_workflow_bytes(recipe) <= WORKFLOW_BUDGET_BYTES
