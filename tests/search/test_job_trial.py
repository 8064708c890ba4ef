"""A sweep job finds its Optuna trial from what its sweeper put in its environment."""

from __future__ import annotations

import optuna
import pytest

from mnist_exp.search.job_trial import JobTrial, sweep_pruner, trial_id
from mnist_exp.tracking.names import OPTUNA_TRIAL_ENV


def test_a_job_outside_a_search_has_no_trial(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(OPTUNA_TRIAL_ENV, raising=False)
    assert JobTrial.from_env() is None
    assert isinstance(sweep_pruner(), optuna.pruners.NopPruner)  # no Hydra sweep running: nothing prunes


def test_a_job_opens_the_trial_its_sweeper_asked_for(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="s", storage=url)
    study.ask()
    asked = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    for key, value in JobTrial(url, "s", asked.number).env().items():
        monkeypatch.setenv(key, value)
    job = JobTrial.from_env()
    assert job == JobTrial(url, "s", 1)
    trial = job.open()
    assert trial.number == 1 and trial.params == asked.params
    storage = optuna.storages.RDBStorage(url)
    assert storage.get_trial_number_from_id(trial_id(storage, "s", 1)) == 1
