"""Where a process stands in a Hydra multirun, asked of Hydra's own job state."""

from __future__ import annotations

import pytest
from helpers import as_hydra_job

from mnist_exp.tracking import multirun
from mnist_exp.tracking.names import PARENT_ENV


def test_a_single_run_is_not_in_a_sweep_even_with_a_parent_in_its_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PARENT_ENV, "leftover")  # a variable a sweep left in a shell means nothing to a single run
    assert multirun.hydra_overrides() == []  # no Hydra job at all
    with as_hydra_job(["training.seed=3"]):
        assert not multirun.in_sweep()
        assert multirun.parent_run_id() is None and multirun.job_number() is None
        assert multirun.hydra_overrides() == ["training.seed=3"]


def test_a_sweep_job_knows_its_parent_and_its_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PARENT_ENV, "p123")
    with as_hydra_job(["optimizer.learning_rate=0.01"], multirun=True):
        assert multirun.in_sweep()
        assert multirun.parent_run_id() == "p123" and multirun.job_number() == "0"


def test_the_run_a_process_trains_is_remembered_for_a_requeue() -> None:
    multirun.note_run("r1")
    multirun.note_run("r2")
    assert multirun.current_run() == "r2"
