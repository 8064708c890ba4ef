"""The ask/launch/tell loop of an Optuna sweep, on a real SQLite study, with a launch that computes at once."""

from __future__ import annotations

import threading

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from mnist_exp.search.job_trial import JobTrial
from mnist_exp.search.space import ConditionalSpace
from mnist_exp.search.study import StudyRun
from mnist_exp.tracking.names import OPTUNA_TRIAL_ENV, PRUNED_EPOCH_ATTR

SPACE = {"optimizer.learning_rate": FloatDistribution(1e-4, 1e-1, log=True)}


def study_run(tmp_path, n_trials: int, n_jobs: int) -> StudyRun:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    storage = optuna.storages.RDBStorage(url)
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize", load_if_exists=True)
    return StudyRun(study, storage, url, ConditionalSpace(SPACE, ["training.epochs=2"]), n_trials, n_jobs)


def learning_rate(overrides: list[str]) -> float:
    (value,) = [o.split("=", 1)[1] for o in overrides if o.startswith("optimizer.learning_rate=")]
    return float(value)


def test_workers_run_each_trial_once_with_its_own_job_number(tmp_path) -> None:
    run = study_run(tmp_path, n_trials=6, n_jobs=3)
    launched: list[tuple[int, list[str]]] = []
    lock = threading.Lock()

    def launch(overrides: list[str], job: int) -> float:
        with lock:
            launched.append((job, overrides))
        return -abs(learning_rate(overrides) - 0.01)

    run.run(launch)
    assert sorted(job for job, _ in launched) == [0, 1, 2, 3, 4, 5]
    assert all("training.epochs=2" in overrides for _, overrides in launched)
    numbers = sorted(int(o.split("=")[1].strip("'")) for _, os_ in launched for o in os_ if OPTUNA_TRIAL_ENV in o)
    assert numbers == [0, 1, 2, 3, 4, 5]  # each job is told its trial's number
    assert [t.state for t in run.study.trials] == [TrialState.COMPLETE] * 6


def test_a_trial_an_interruption_left_running_is_run_again_with_its_params(tmp_path) -> None:
    first = study_run(tmp_path, n_trials=3, n_jobs=1)
    left = first.study.ask(SPACE)  # its sweep was stopped while the job ran
    again = study_run(tmp_path, n_trials=3, n_jobs=1)
    trial, overrides, _ = again.next_trial()
    assert trial.number == left.number and learning_rate(overrides) == left.params["optimizer.learning_rate"]
    seen = [trial.number]
    again.tell(trial, 0.5)
    while (item := again.next_trial()) is not None:
        seen.append(item[0].number)
        again.tell(item[0], 0.4)
    assert seen == [0, 1, 2]
    assert len(again.study.trials) == 3


def test_how_a_job_ended_is_told_pruned_failed_or_with_its_value(tmp_path) -> None:
    run = study_run(tmp_path, n_trials=3, n_jobs=1)
    pruned, _, _ = run.next_trial()
    JobTrial(run.url, "s", pruned.number).open().set_user_attr(PRUNED_EPOCH_ATTR, 1)  # as the job does
    run.tell(pruned, 0.3)
    failed, _, _ = run.next_trial()
    run.tell(failed, None)
    done, _, _ = run.next_trial()
    run.tell(done, 0.7)
    assert [t.state for t in run.study.trials] == [TrialState.PRUNED, TrialState.FAIL, TrialState.COMPLETE]
    assert run.study.best_value == 0.7


def test_a_stop_ends_the_workers_without_new_trials(tmp_path) -> None:
    run = study_run(tmp_path, n_trials=10, n_jobs=2)

    def launch(overrides: list[str], job: int) -> float:
        if job == 3:
            raise KeyboardInterrupt
        return 0.5

    with pytest.raises(KeyboardInterrupt):
        run.run(launch)
    assert run.stopping.is_set()
    assert len(run.study.trials) < 10
