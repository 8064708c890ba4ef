"""The package's shape: no import cycles, commands apart from the library, every package listed for the wheel."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mnist_exp

PACKAGE = Path(mnist_exp.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every mnist_exp module ``path`` imports, at its top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("mnist_exp")}


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: {m for m in imports(path) if m in modules and m != name} for name, path in modules.items()}


def test_the_library_has_no_import_cycles() -> None:
    graph = import_graph()
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if target == module.rsplit(".", 1)[0] or module.startswith(f"{target}."):
                continue  # a module's own package __init__ runs first anyway
            if state.get(target) == "open":
                cycle = [*path[path.index(target) :], target] if target in path else [module, target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_nothing_in_the_library_imports_a_command() -> None:
    graph = import_graph()
    offenders = {
        module: sorted(t for t in targets if t.startswith("mnist_exp.commands"))
        for module, targets in graph.items()
        if not module.startswith("mnist_exp.commands")
    }
    assert {m: t for m, t in offenders.items() if t} == {}


def test_every_mlflow_name_is_defined_once() -> None:
    """Tag and metric names used as string literals outside tracking/names.py would drift apart."""
    from mnist_exp.tracking import names

    values = {v for k, v in vars(names).items() if k.isupper() and isinstance(v, str) and "." in v}
    for path in PACKAGE.rglob("*.py"):
        if path.name == "names.py":
            continue
        literals = {
            node.value
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
        }
        assert not (literals & values), f"{path.relative_to(PACKAGE)} spells out {sorted(literals & values)}"


def test_pyproject_lists_every_package_of_the_tree() -> None:
    """A package missing from pyproject.toml's list would be missing from the wheel."""
    import tomllib

    root = PACKAGE.parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    mapped = {"conf": "mnist_exp.conf", "experiments": "mnist_exp.experiments"}
    found = set(mapped.values())
    for top in ("mnist_exp", "hydra_plugins"):
        for init in (root / top).rglob("__init__.py"):
            found.add(".".join(init.parent.relative_to(root).parts))
    found.add("hydra_plugins")  # a namespace package shared with other plugins: listed for the editable finder
    assert listed == found
    assert not list(PACKAGE.rglob("*.yaml")), "configs belong in conf/ or experiments/"


def test_tracking_never_imports_the_schema() -> None:
    """The schema may read tracking's params; tracking reads no config declaration (one direction only)."""
    graph = import_graph()
    offenders = {m: t for m, t in graph.items() if m.startswith("mnist_exp.tracking") and "mnist_exp.schema" in t}
    assert offenders == {}
