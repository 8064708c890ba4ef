"""The package's shape: no import cycles, commands apart from the library, configs shipped inside it."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FAST

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


@pytest.mark.slow
def test_an_installed_package_runs_from_any_folder_with_a_users_own_experiments(tmp_path, synthetic) -> None:
    """``pip install .`` (no checkout beside it) composes, finds a user's experiment folder and trains."""
    root = PACKAGE.parent
    wheels, site, work, mine = tmp_path / "wheels", tmp_path / "site", tmp_path / "work", tmp_path / "my_conf"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(root)], check=True)
    wheel = next(wheels.glob("mnist_exp-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True)
    (mine / "experiment").mkdir(parents=True)
    (mine / "experiment" / "tiny.yaml").write_text(
        "# @package _global_\n# A user's own experiment, outside the package.\n"
        "training: {epochs: 1}\nmodel: {layers: {dense1: {units: 16}}}\ntracking: {experiment_name: tiny}\n"
    )
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "PYTHONPATH")}
    env["PYTHONPATH"] = str(site)  # the installed copy only: the checkout is not on the path
    searchpath = f"hydra.searchpath=[file://{mine}]"
    command = [sys.executable, "-m", "mnist_exp.commands.train", searchpath]

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*command, *args], cwd=work, env=env, capture_output=True, text=True, timeout=300)

    located = subprocess.run(
        [sys.executable, "-c", "import mnist_exp; print(mnist_exp.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert located.stdout.strip().startswith(str(site))
    help_text = run("--help")
    assert help_text.returncode == 0, help_text.stderr[-2000:]
    assert "reference" in help_text.stdout and "The reference recipe" in help_text.stdout
    (listed,) = [line.split() for line in help_text.stdout.splitlines() if line.split()[:1] == ["tiny"]]
    assert " ".join(listed[1:]) == "A user's own experiment, outside the package."  # from the searchpath
    shown = run("experiment=tiny", "--cfg", "job", "--resolve")
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert f"store_dir: {work}/mlruns" in shown.stdout  # no checkout: the store is in the working folder
    trained = run("experiment=tiny", *synthetic, *FAST)
    assert trained.returncode == 0, trained.stderr[-3000:]
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{work / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny")
    (run_,) = client.search_runs([experiment.experiment_id])
    assert run_.info.status == "FINISHED" and run_.data.params["model.layers.dense1.units"] == "16"
