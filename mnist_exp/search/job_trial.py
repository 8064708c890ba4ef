"""Which Optuna trial a sweep job runs, passed from the sweeper to the job through its environment.

Light (no Keras): the sweeper plugin imports it, and Hydra imports every plugin at start-up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import optuna

from mnist_exp.tracking.names import OPTUNA_STORAGE_ENV, OPTUNA_STUDY_ENV, OPTUNA_TRIAL_ENV


def trial_id(storage: optuna.storages.BaseStorage, study_name: str, number: int) -> int:
    """The storage's id of trial ``number`` of the study (Optuna's public storage API)."""
    return storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study_name), number)


@dataclass(frozen=True)
class JobTrial:
    """Where a job's trial lives: the storage URL, the study's name and the trial's number."""

    storage: str
    study: str
    number: int

    def env(self) -> dict[str, str]:
        return {OPTUNA_STORAGE_ENV: self.storage, OPTUNA_STUDY_ENV: self.study, OPTUNA_TRIAL_ENV: str(self.number)}

    @classmethod
    def from_env(cls) -> JobTrial | None:
        """The trial this job runs, as its sweeper set it; None outside an Optuna search."""
        if OPTUNA_TRIAL_ENV not in os.environ:
            return None
        return cls(os.environ[OPTUNA_STORAGE_ENV], os.environ[OPTUNA_STUDY_ENV], int(os.environ[OPTUNA_TRIAL_ENV]))

    def open(self) -> optuna.Trial:
        """The trial, in its study as the sweeper configured it (the pruner decides in this process)."""
        storage = optuna.storages.RDBStorage(self.storage)
        study = optuna.load_study(study_name=self.study, storage=storage, pruner=sweep_pruner())
        return optuna.Trial(study, trial_id(storage, self.study, self.number))


def sweep_pruner() -> optuna.pruners.BasePruner:
    """The pruner of the running sweep's config (``hydra.sweeper.pruner``); none when it has none."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate

    node = HydraConfig.get().sweeper.get("pruner") if HydraConfig.initialized() else None
    return instantiate(node) if node else optuna.pruners.NopPruner()
