"""``hydra/sweeper=optuna_pruning``: an Optuna study whose jobs report every epoch to their trial.

A thin Hydra plugin over ``mnist_exp.search``: the search space from ``params``, its
``conditional`` branches and the command line, the study in a real Optuna storage (named after the sweep's MLflow parent
run, so ``sweep.resume`` continues it), trials asked and told by ``n_jobs`` workers.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import optuna
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from mnist_exp.search.space import conditional_space
from mnist_exp.search.study import StudyRun
from mnist_exp.tracking.names import PARENT_ENV, STUDY_TAG

log = logging.getLogger(__name__)
IN_PROCESS_LAUNCHERS = ("BasicLauncher",)  # run jobs in this process: one at a time


class OptunaPruningSweeper(Sweeper):
    """Samples trials with Optuna's sampler, prunes them with its pruner, ``n_jobs`` at a time."""

    def __init__(
        self,
        n_trials: int,
        n_jobs: int,
        direction: str,
        storage: str,
        study_name: str | None,
        sampler: optuna.samplers.BaseSampler | None,
        pruner: optuna.pruners.BasePruner | None,
        params: dict[str, str] | None,
        conditional: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.n_trials, self.n_jobs, self.direction = n_trials, n_jobs, direction
        self.storage, self.study_name = storage, study_name
        self.sampler, self.pruner = sampler, pruner or optuna.pruners.NopPruner()
        self.params = dict(params or {})
        self.conditional = {str(k): dict(v or {}) for k, v in (conditional or {}).items()}

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        search = conditional_space([*(f"{k}={v}" for k, v in self.params.items()), *arguments], self.conditional)
        parent = os.environ.get(PARENT_ENV)
        name = self.study_name or f"mnist-exp-{parent}"
        storage = optuna.storages.RDBStorage(self.storage)
        study = optuna.create_study(
            storage=storage,
            study_name=name,
            direction=self.direction,
            sampler=self.sampler,
            pruner=self.pruner,
            load_if_exists=True,
        )
        if study.trials:  # a continued study: a seeded sampler would draw its first trials' values again
            study.sampler.reseed_rng()
        if parent is not None:
            from mnist_exp.tracking.store import open_store

            open_store(self.config.tracking.uri).set_tag(parent, STUDY_TAG, f"{name} in {self.storage}")
        n_jobs = self.n_jobs
        if type(self.launcher).__name__ in IN_PROCESS_LAUNCHERS and n_jobs > 1:
            log.warning("the %s runs jobs in this process: one trial at a time", type(self.launcher).__name__)
            n_jobs = 1
        log.info(
            "study %s (%s): %d trials in all, %d already there, %d at a time; pruner %s",
            name, self.storage, self.n_trials, len(study.trials), n_jobs, type(self.pruner).__name__,
        )  # fmt: skip
        run = StudyRun(
            study, storage, self.storage, search, self.n_trials, n_jobs,
            first_job=len(study.trials), max_failures=self.config.sweep.max_failures,
        )  # fmt: skip
        run.run(self.launch)
        return study

    def launch(self, overrides: list[str], job: int) -> float | None:
        (result,) = self.launcher.launch([overrides], initial_job_idx=job)
        try:
            return float(result.return_value)
        except Exception as exc:  # the job failed outside its run (a failed run is recorded by the job itself)
            log.error("job %d failed: %s: %s", job, type(exc).__name__, exc, exc_info=exc)
            return None
