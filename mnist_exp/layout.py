"""Where the configs are: the config tree (the checkout's ``conf/``) and the presets (its ``experiments/``).

Both install as packages of their own, ``mnist_exp.conf`` and ``mnist_exp.experiments``, so an
editable install reads the checkout's folders (a new YAML file needs no reinstall) and a wheel
carries copies. Hydra reads the tree as ``pkg://mnist_exp.conf``; ``hydra_plugins/mnist_exp_presets``
adds the presets as the group ``experiment``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

CONFIG_MODULE = "mnist_exp.conf"
CONFIG_NAME = "config"
EXPERIMENTS_MODULE = "mnist_exp.experiments"
EXPERIMENT_GROUP = "experiment"


PACKAGE_DIR = Path(__file__).resolve().parent


def checkout_root() -> Path | None:
    """The source checkout the package runs from (an editable install), or None for an installed package."""
    root = PACKAGE_DIR.parent
    return root if (root / "pyproject.toml").is_file() else None


def project_root() -> Path:
    """Where the default store lives: the checkout's root, or for an installed package the working folder."""
    return checkout_root() or Path.cwd()


def package_folder(module: str) -> Path:
    """The folder an installed package of configs lives in (the checkout's own in an editable install)."""
    return Path(str(files(module)))


def group_folder(group: str) -> Path:
    """The packaged folder that holds a config group's options."""
    if group == EXPERIMENT_GROUP:
        return package_folder(EXPERIMENTS_MODULE)
    return package_folder(CONFIG_MODULE) / group
