"""Sweeps in MLflow: one parent run per Hydra multirun, each job a child run.

``MlflowSweepCallback`` is registered in conf/config.yaml under ``hydra.callbacks``.
In the launching process it creates (and migrates) the store, opens the parent run
before any job starts, and when the sweep ends it writes the summary and gives the
parent the best child's params and metrics. Jobs find their parent through the
environment, which every launcher (in-process, joblib workers, submitit, SLURM) passes on.
"""

from __future__ import annotations

import json
import logging
import os
import traceback
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

PARENT_ENV = "MNIST_EXP_SWEEP_PARENT_RUN_ID"
SWEEP_RECORD = "mlflow_sweep.json"
JOB_TAG = "sweep.job"
ERROR_TAG = "error"


def hydra_overrides() -> list[str]:
    """The command-line overrides of the current Hydra job, if there is one."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def in_sweep() -> bool:
    """Whether this process runs a job of a Hydra multirun."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def parent_run_id() -> str | None:
    """The sweep's parent run, for a job of a multirun; None for a single run."""
    return os.environ.get(PARENT_ENV) if in_sweep() else None


def job_tags() -> dict[str, str]:
    """Tags that place a job in its sweep."""
    return {JOB_TAG: str(HydraConfig.get().job.num)} if in_sweep() else {}


def error_tags(exc: BaseException) -> dict[str, str]:
    """The error of a failed run, short enough for a tag (an error may name its own tags, as a divergence does)."""
    return getattr(exc, "tags", None) or {ERROR_TAG: f"{type(exc).__name__}: {exc}"[:4000]}


def record_failure(cfg: DictConfig, exc: BaseException) -> None:
    """Make sure a job that failed shows as a FAILED child, with its error.

    A job that failed during training already has its run, ended FAILED by
    ``train``; a job that failed before its run started gets one here.
    """
    from mlflow import MlflowClient
    from mlflow.entities import Param

    from mnist_exp import tracking

    parent = parent_run_id()
    if parent is None:
        return
    client = MlflowClient(cfg.tracking.uri)
    experiment_id = client.get_run(parent).info.experiment_id
    job = job_tags()[JOB_TAG]
    existing = client.search_runs(
        [experiment_id], f"tags.mlflow.parentRunId = '{parent}' and tags.`{JOB_TAG}` = '{job}'"
    )
    if existing:
        return
    tags = {"mlflow.parentRunId": parent, **job_tags(), **error_tags(exc)}
    tags["hydra.overrides"] = " ".join(hydra_overrides())
    run = client.create_run(experiment_id, run_name=f"{cfg.tracking.run_name}-{job}", tags=tags)
    try:
        params = tracking.flatten(OmegaConf.to_container(cfg, resolve=True))
    except Exception:  # an unresolvable config is what failed: record the error alone
        params = {}
    client.log_batch(run.info.run_id, params=[Param(k, v) for k, v in params.items()])
    client.log_text(run.info.run_id, "".join(traceback.format_exception(exc)), "error.txt")
    client.set_terminated(run.info.run_id, "FAILED")


class MlflowSweepCallback(Callback):
    """Opens the sweep's parent run before the jobs and summarises them after.

    If the parent cannot be opened the sweep stops there, loudly (Hydra would
    only warn and run the jobs as orphans). A sweep stopped by Ctrl-C or SIGTERM
    is closed by ``close_interrupted``: its parent ends KILLED with a summary.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from mnist_exp import errors, tracking

        try:
            run_id = open_parent(config)
        except Exception as exc:  # raised here, Hydra would warn and go on
            if errors.wants_traceback():
                raise SystemExit(1) from exc
            raise SystemExit(
                errors.report(
                    exc if isinstance(exc, errors.UserError) else tracking.store_error(config.tracking.uri, exc)
                )
            ) from None
        os.environ[PARENT_ENV] = run_id
        OPEN_SWEEPS[run_id] = config

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        parent = os.environ.pop(PARENT_ENV, None)
        if parent is not None:
            close(config, parent, interrupted=False)


# Sweeps this process opened and has not closed yet: parent run id -> the sweep's config.
OPEN_SWEEPS: dict[str, DictConfig] = {}


def open_parent(config: DictConfig) -> str:
    """Create the store if needed and the sweep's parent run; record it in the sweep folder."""
    from mnist_exp import tracking

    experiment_id = tracking.connect(config.tracking)  # creates and migrates the store once, here
    sweep_dir = Path(config.hydra.sweep.dir).resolve()
    tags = {
        "sweep.dir": str(sweep_dir),
        "sweep.overrides": " ".join(config.hydra.overrides.task),
        "sweep.role": "parent",
    }
    name = f"{config.tracking.experiment_name}-sweep-{sweep_dir.name}"
    run = tracking.open_store(config.tracking.uri).create_run(experiment_id, run_name=name, tags=tags)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    record = {"parent_run_id": run.info.run_id, "tracking_uri": config.tracking.uri}
    (sweep_dir / SWEEP_RECORD).write_text(json.dumps(record, indent=2) + "\n")
    log.info("MLflow parent run %s (%s)", run.info.run_id, name)
    return run.info.run_id


def close(config: DictConfig, parent: str, interrupted: bool) -> None:
    """Summarise the sweep onto its parent and end it: FINISHED, FAILED (no job finished) or KILLED.

    An interrupted sweep's jobs still marked RUNNING (their worker was stopped before
    it could say so) end KILLED; their checkpoints stay in their run folders for ``resume``.
    """
    from mlflow import MlflowClient

    from mnist_exp import report

    OPEN_SWEEPS.pop(parent, None)
    client = MlflowClient(config.tracking.uri)
    if interrupted:
        for run in report.children(client, parent):
            if run.info.status == "RUNNING":
                client.set_terminated(run.info.run_id, "KILLED")
    summary = report.publish(client, parent, Path(config.hydra.sweep.dir), config.objective)
    status = "KILLED" if interrupted else "FINISHED" if summary.finished else "FAILED"
    client.set_terminated(parent, status)
    if interrupted:
        log.warning("sweep interrupted: parent run %s ends KILLED with the summary of what finished", parent)


def close_interrupted() -> None:
    """End every sweep this process opened and did not close: what a Ctrl-C or SIGTERM left open."""
    for parent, config in list(OPEN_SWEEPS.items()):
        os.environ.pop(PARENT_ENV, None)
        try:
            close(config, parent, interrupted=True)
        except Exception:  # the store may be what failed; the stop goes on
            log.exception("could not close the interrupted sweep's parent run %s", parent)
