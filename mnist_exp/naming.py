"""Run names that say what sets a run apart: the recipe, then its swept values or its command-line changes.

``tracking.run_name`` is ``${run_name:<recipe>}``. In a sweep the name adds the job's swept
values (the sweep's callback passes their keys in ``SWEPT_ENV``); outside one, the
command-line overrides that change what is computed, the keys the config hash leaves out
(``tracking``, ``training.threads``, ...) and choices the recipe already names excepted.
Values are rounded and the name is cut at ``display.RUN_NAME_LIMIT`` characters.
"""

from __future__ import annotations

import os

from omegaconf import DictConfig

from mnist_exp.display import run_label, short_item
from mnist_exp.schema import not_hashed_keys
from mnist_exp.tracking.multirun import hydra_overrides, in_sweep
from mnist_exp.tracking.names import SWEPT_ENV


def override_key(override: str) -> str:
    """The config key an override sets: ``++training.seed=3`` -> ``training.seed``."""
    return override.split("=", 1)[0].lstrip("+~")


def swept_keys() -> set[str] | None:
    """The keys this sweep job's sweep varies; None outside a sweep."""
    keys = os.environ.get(SWEPT_ENV) if in_sweep() else None
    return None if keys is None else {key for key in keys.split(",") if key}


def changes_recipe(key: str, value: str, recipe: str, cfg: DictConfig) -> bool:
    """Whether an override changes what a run computes (not where or how it is recorded)."""
    root = key.split(".", 1)[0].split("/", 1)[0]
    if root not in cfg or any(key == k or key.startswith(f"{k}.") for k in not_hashed_keys()):
        return False  # a launcher, a hydra setting, a tracking or threading key
    return "." in key or value not in recipe.split("-")  # a group choice the recipe names is said already


def run_name(recipe: str, cfg: DictConfig) -> str:
    """The run's name: ``recipe``, then the swept values (in a sweep) or the changing overrides."""
    swept = swept_keys()
    items = []
    for override in hydra_overrides():
        if "=" not in override or override.startswith("~"):
            continue
        key, value = override_key(override), override.split("=", 1)[1]
        if key in swept if swept is not None else changes_recipe(key, value, recipe, cfg):
            items.append(short_item(key, value))
    return run_label(recipe, items)
