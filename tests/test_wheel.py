"""The package as users get it: a wheel that holds every file, an editable install that reads the checkout.

The wheel is built once and installed in a fresh virtual environment that borrows only the
third-party packages of the test environment (a ``.pth`` line, which does not run the
checkout's editable finder), and every command runs from an empty folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from helpers import FAST, ONE_EPOCH

from mnist_exp.layout import checkout_root

ROOT = checkout_root()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(ROOT is None, reason="needs the source checkout"),
    # One worker builds the wheel once: two builds at a time share the checkout's build/ folder and break each other.
    pytest.mark.xdist_group("wheel"),
]
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]

# Run inside the fresh environment: compose every option of every group from the installed copy.
COMPOSE_EVERY_OPTION = r"""
import importlib.util, json
from omegaconf import OmegaConf
from mnist_exp.config import compose
from mnist_exp.layout import CONFIG_MODULE, EXPERIMENT_GROUP, group_folder, package_folder

root = package_folder(CONFIG_MODULE)
groups = sorted({p.parent.relative_to(root).as_posix() for p in root.rglob("*.yaml") if p.parent != root})
# A group under hydra/ composes on top of the sweeper that owns it.
base = {"hydra/sweeper/pruner": ["hydra/sweeper=optuna_pruning"]}
composed, skipped = [], []
for group in [*groups, EXPERIMENT_GROUP]:
    for path in sorted(group_folder(group).glob("*.yaml")):
        choice = f"{group}={path.stem}"
        if choice == "launcher=ray" and importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") is None:
            skipped.append(choice)
            continue
        cfg = compose([*base.get(group, []), choice], return_hydra_config=True)
        OmegaConf.to_yaml(cfg)
        composed.append(choice)
print(json.dumps({"composed": composed, "skipped": skipped}))
"""


def tree_files() -> set[str]:
    """Where each file of the checkout's packages lands in an installed copy."""
    mapped = {"conf": "mnist_exp/conf", "experiments": "mnist_exp/experiments"}
    found: set[str] = set()
    for folder in ("conf", "experiments", "mnist_exp", "hydra_plugins"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".yaml") and "__pycache__" not in path.parts:
                relative = path.relative_to(ROOT / folder).as_posix()
                found.add(f"{mapped.get(folder, folder)}/{relative}")
    return found


def fresh_environment(folder: Path) -> Path:
    """A new virtual environment that sees the test environment's third-party packages; its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "PYTHONPATH")}


def run_in(folder: Path, *command: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """A command of the fresh environment, run in ``folder`` without the test environment's store or path."""
    return subprocess.run(command, cwd=folder, env=clean_env(), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built once from the checkout."""
    out = tmp_path_factory.mktemp("wheels")
    subprocess.run([*PIP, "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(ROOT)], check=True)
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    return next(out.glob("mnist_exp-*.whl"))


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel installed in a fresh virtual environment; its bin folder."""
    python = fresh_environment(tmp_path_factory.mktemp("venv") / "env")
    subprocess.run([*PIP, "--python", str(python), "install", "--no-deps", str(wheel)], check=True)
    return python.parent


def test_the_wheel_holds_every_config_preset_and_module(wheel: Path) -> None:
    shipped = set(zipfile.ZipFile(wheel).namelist())
    expected = tree_files()
    assert {name for name in expected if name.endswith(".yaml")}, "no YAML found in the tree"
    assert sorted(expected - shipped) == []
    assert not any(name.startswith(("conf/", "experiments/", "tests/")) for name in shipped)


def test_every_preset_and_group_option_composes_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    result = run_in(tmp_path, str(installed / "python"), "-c", COMPOSE_EVERY_OPTION)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.splitlines()[-1])
    tree = {
        f"{path.parent.relative_to(ROOT / 'conf').as_posix()}={path.stem}"
        for path in (ROOT / "conf").rglob("*.yaml")
        if path.parent != ROOT / "conf"
    } | {f"experiment={path.stem}" for path in (ROOT / "experiments").glob("*.yaml")}
    assert set(report["composed"]) | set(report["skipped"]) == tree
    assert set(report["skipped"]) <= {"launcher=ray"}
    located = run_in(tmp_path, str(installed / "python"), "-c", "import mnist_exp; print(mnist_exp.__file__)")
    assert located.stdout.startswith(str(installed.parent)), located.stdout + located.stderr


def test_the_wheel_trains_and_searches_from_an_empty_folder_with_a_users_own_experiments(
    installed: Path, tmp_path: Path, synthetic: list[str]
) -> None:
    """From the wheel: --help lists a user's folder, one run trains, and a 2-trial Optuna search runs."""
    work, mine = tmp_path / "work", tmp_path / "my_conf"
    (mine / "experiment").mkdir(parents=True)
    (mine / "experiment" / "tiny.yaml").write_text(
        "# @package _global_\n# A user's own experiment, outside the package.\n"
        "training: {epochs: 1}\nmodel: {layers: {dense1: {units: 16}}}\ntracking: {experiment_name: tiny}\n"
    )
    work.mkdir()
    searchpath = f"hydra.searchpath=[file://{mine}]"

    def run(*args: str) -> subprocess.CompletedProcess:
        return run_in(work, str(installed / "mnist-exp"), searchpath, *args, timeout=600)

    help_text = run("--help")
    assert help_text.returncode == 0, help_text.stderr[-2000:]
    listed = {line.split()[0]: " ".join(line.split()[1:]) for line in help_text.stdout.splitlines() if line[:2] == "  "}
    assert listed["tiny"] == "A user's own experiment, outside the package."  # from the searchpath
    assert listed["optuna_search"].startswith("Bayesian search")  # from the wheel's experiments
    shown = run("experiment=tiny", "--cfg", "job", "--resolve")
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert f"store_dir: {work}/mlruns" in shown.stdout  # no checkout: the store is in the working folder
    trained = run("experiment=tiny", *synthetic, *FAST)
    assert trained.returncode == 0, trained.stderr[-3000:]
    search = run(
        "experiment=optuna_search",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.sampler.n_startup_trials=2",
        "tracking.experiment_name=search",
        *synthetic,
        *ONE_EPOCH,
    )
    assert search.returncode == 0, search.stderr[-3000:]
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{work / 'mlruns' / 'mlflow.db'}")
    (tiny,) = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    assert tiny.info.status == "FINISHED" and tiny.data.params["model.layers.dense1.units"] == "16"
    runs = client.search_runs([client.get_experiment_by_name("search").experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == 2 and {r.info.status for r in children} == {"FINISHED"}
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}


def test_an_editable_install_sees_a_new_experiment_without_reinstalling(tmp_path: Path) -> None:
    """A copy of the checkout installed editable: a YAML file dropped into experiments/ is a preset at once."""
    copy = tmp_path / "checkout"
    for name in ("conf", "experiments", "mnist_exp", "hydra_plugins"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, copy / name)
    python = fresh_environment(tmp_path / "env")
    subprocess.run(
        [*PIP, "--python", str(python), "install", "--no-deps", "--no-build-isolation", "-e", str(copy)], check=True
    )
    (copy / "experiments" / "added_later.yaml").write_text(
        "# @package _global_\n# Added after the install.\ntraining: {epochs: 7}\n"
    )
    work = tmp_path / "work"
    work.mkdir()
    shown = run_in(work, str(python.parent / "mnist-exp"), "experiment=added_later", "--cfg", "job")
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "epochs: 7" in shown.stdout
    help_text = run_in(work, str(python.parent / "mnist-exp"), "--help")
    assert re.search(r"^\s*added_later +Added after the install\.$", help_text.stdout, re.MULTILINE)
