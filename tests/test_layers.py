"""The layers: sdar_core (the library) never imports pipelines/ (the KFP side, which imports it).

The rule this enforces: no module under sdar_core has an `import pipelines...` or
`from pipelines... import` statement, at any depth (inside functions too). The commands that
compile, submit or run a pipeline reach pipelines/ at call time only through
`sdar_core.cli_common.pipelines()`, and only modules of the command-line layer
(`sdar_core/cli*.py`) may use that loader; no other module calls importlib on `pipelines`.
"""

import ast
from pathlib import Path

import sdar_core

ROOT = Path(sdar_core.__file__).parent


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        yield path.relative_to(ROOT.parent), ast.parse(path.read_text(), filename=str(path))


def _is_pipelines(name: object) -> bool:
    return isinstance(name, str) and (name == "pipelines" or name.startswith("pipelines."))


def test_no_module_under_sdar_core_imports_pipelines():
    offenders = []
    for path, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            offenders += [f"{path}:{node.lineno} imports {n}" for n in names if _is_pipelines(n)]
    assert offenders == []


def test_only_the_command_layer_loads_pipelines_lazily():
    users, dynamic = [], []
    for path, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "sdar_core.cli_common":
                if any(alias.name == "pipelines" for alias in node.names):
                    users.append(path)
            if isinstance(node, ast.Constant) and _is_pipelines(node.value):
                dynamic.append(f"{path}:{node.lineno}")
    assert users and all(p.name.startswith("cli") for p in users), users
    # "pipelines" as a string (what importlib would be given) only in the loader and the commands
    assert all(s.split(":")[0].split("/")[-1].startswith("cli") for s in dynamic), dynamic


def test_the_scan_sees_an_import_inside_a_function():
    tree = ast.parse("def f():\n    from pipelines.local import run_local\n")
    found = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert found == ["pipelines.local"] and _is_pipelines(found[0])
