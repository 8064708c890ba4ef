"""The search drives Optuna through its public API only: names Optuna may rename are not used."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SEARCH_CODE = [
    *sorted((ROOT / "mnist_exp" / "search").glob("*.py")),
    ROOT / "hydra_plugins/mnist_exp_sweeper/optuna_pruning.py",
]
PRIVATE = re.compile(r"\b(study|trial|storage|sampler|pruner|optuna(\.\w+)*)\._\w+")


def test_no_private_optuna_attribute_is_used() -> None:
    used = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in SEARCH_CODE
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if PRIVATE.search(line)
    ]
    assert used == []


def test_the_pattern_catches_what_the_search_once_used() -> None:
    for line in ("study._storage.get_trial(1)", "trial._trial_id", "self.study._study_id", "optuna.trial._trial.Trial"):
        assert PRIVATE.search(line), line
