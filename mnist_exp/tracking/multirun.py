"""Where this process stands in a Hydra multirun: light, so that a single run needs no MLflow to ask."""

from __future__ import annotations

import os

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from mnist_exp.tracking.names import PARENT_ENV

# Sweeps this process opened and has not closed yet: parent run id -> the sweep's config.
OPEN_SWEEPS: dict[str, DictConfig] = {}
# Sweeps this process closed FAILED (no job finished, or too many failed): parent run id -> why, in one line.
FAILED_SWEEPS: dict[str, str] = {}
# The run this process trains or trained last: a scheduler's requeue continues it (``note_run``).
_current_run: list[str] = []


def note_run(run_id: str) -> None:
    """Remember the run this process now trains."""
    _current_run[:] = [run_id]


def current_run() -> str | None:
    """The run this process trains or trained last; None before any."""
    return _current_run[0] if _current_run else None


def hydra_overrides() -> list[str]:
    """The command-line overrides of the current Hydra job, if there is one."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def in_sweep() -> bool:
    """Whether this process runs a job of a Hydra multirun."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def parent_run_id() -> str | None:
    """The sweep's parent run, for a job of a multirun; None for a single run."""
    return os.environ.get(PARENT_ENV) if in_sweep() else None


def job_number() -> str | None:
    """The job's number in its sweep; None outside a sweep."""
    return str(HydraConfig.get().job.num) if in_sweep() else None
