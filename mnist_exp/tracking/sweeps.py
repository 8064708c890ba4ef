"""Sweeps in MLflow: one parent run per Hydra multirun, each job a child run.

``sweep_callback.MlflowSweepCallback`` calls ``open_parent`` in the launching process before any
job starts (creating and migrating the store), and ``close`` when the sweep ends: the
summary, the parent given the best child's params and metrics. Jobs find their parent
through the environment, which every launcher (in-process, joblib workers, submitit,
SLURM) passes on.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig

from mnist_exp import stops
from mnist_exp.errors import UserError
from mnist_exp.tracking import liveness, reports, runs, store
from mnist_exp.tracking.multirun import FAILED_SWEEPS, OPEN_SWEEPS, hydra_overrides, job_number, parent_run_id
from mnist_exp.tracking.names import (
    ERROR_TAG,
    PARENT_ENV,
    STOP_REASON_TAG,
    SWEEP_DIR_TAG,
    SWEEP_JOB_TAG,
    SWEEP_LOST_TAG,
    SWEEP_OVERRIDES_TAG,
    SWEEP_PARENT_ROLE,
    SWEEP_RECORD,
    SWEEP_ROLE_TAG,
)

log = logging.getLogger(__name__)


def record_failure(cfg: DictConfig, exc: BaseException) -> None:
    """Record a job that failed as a FAILED child of its sweep (see ``runs.record_failed_job``)."""
    parent = parent_run_id()
    if parent is not None:
        client = store.open_store(cfg.tracking.uri)
        runs.record_failed_job(client, cfg, parent, str(job_number()), hydra_overrides(), exc)


class SweepStoppedError(Exception):
    """A sweep job not launched: the sweep has had ``sweep.max_failures`` failed jobs."""


def failed_enough(client: MlflowClient, parent: str, limit: int | None) -> str | None:
    """Why the sweep stops launching jobs (its failed jobs have reached ``limit``), or None while it goes on."""
    if limit is None:
        return None
    failed = [run for run in reports.children(client, parent) if run.info.status == "FAILED"]
    if len(failed) < limit:
        return None
    first = min(failed, key=lambda run: run.info.end_time or run.info.start_time)
    error = " ".join(first.data.tags.get(ERROR_TAG, "its error was not recorded").split())[:500]
    return (
        f"the sweep stopped launching jobs after {len(failed)} failed (sweep.max_failures={limit}); "
        f"the first, job {first.data.tags.get(SWEEP_JOB_TAG, '?')}: {error}"
    )


def stop_if_failing(cfg: DictConfig) -> None:
    """Raise ``SweepStoppedError`` in a sweep job whose sweep has failed ``sweep.max_failures`` times."""
    parent, limit = parent_run_id(), cfg.sweep.max_failures
    if parent is None or limit is None:  # no limit: the store is not asked
        return
    if why := failed_enough(store.open_store(cfg.tracking.uri), parent, limit):
        raise SweepStoppedError(why)


class JobWithoutResultError(Exception):
    """A sweep job that ended without a result: lost with its node, cancelled, or never scheduled."""


HEARTBEATS: dict[str, liveness.Heartbeat] = {}  # the open sweeps' parents, each beating while its driver lives
_lost_jobs_lock = threading.Lock()  # one writer at a time of a parent's list of lost jobs


def record_job_without_result(config: DictConfig, parent: str | None, job: int, overrides: list[str], why: str) -> None:
    """A job its launcher saw end without a result: its run ends KILLED with ``why`` (a FAILED run says it,
    where the job had none), and the sweep's parent lists it under ``sweep.lost_jobs``."""
    if parent is None:
        return
    client = store.open_store(config.tracking.uri)
    run = runs.job_run(client, parent, str(job))
    if run is None:
        runs.record_failed_job(client, config, parent, str(job), overrides, JobWithoutResultError(why))
    else:
        client.set_tag(run.info.run_id, STOP_REASON_TAG, why)
        if run.info.status == "RUNNING":
            client.set_terminated(run.info.run_id, "KILLED")
    with _lost_jobs_lock:
        earlier = client.get_run(parent).data.tags.get(SWEEP_LOST_TAG)
        client.set_tag(parent, SWEEP_LOST_TAG, "; ".join(filter(None, [earlier, f"job {job}: {why}"]))[:5000])


def end_running_jobs(config: DictConfig, parent: str, why: str) -> None:
    """End the sweep's jobs still marked RUNNING (their processes are gone) KILLED, with ``why``."""
    client = store.open_store(config.tracking.uri)
    for run in reports.children(client, parent):
        if run.info.status == "RUNNING":
            client.set_tag(run.info.run_id, STOP_REASON_TAG, why)
            client.set_terminated(run.info.run_id, "KILLED")


def no_job_running(config: DictConfig, parent: str) -> bool:
    """Whether none of the sweep's job runs is RUNNING (each has recorded its end)."""
    client = store.open_store(config.tracking.uri)
    return all(run.info.status != "RUNNING" for run in reports.children(client, parent))


def open_parent(config: DictConfig) -> str:
    """Create the store if needed and the sweep's parent run (``sweep.resume``: reopen it); note it in the folder."""
    client = store.connect(config.tracking)  # creates and migrates the store once, here
    experiment_id = store.experiment_id(client, config.tracking, config.objective)
    liveness.end_dead_runs(client, config.tracking.dead_after_s, [experiment_id])
    sweep_dir = Path(config.hydra.sweep.dir).resolve()
    tags = {SWEEP_DIR_TAG: str(sweep_dir), SWEEP_ROLE_TAG: SWEEP_PARENT_ROLE}
    resume = config.get("sweep", {}).get("resume")
    if resume:
        run_id = reopen_parent(client, resume, config.tracking.dead_after_s)
        for key, value in tags.items():
            client.set_tag(run_id, key, value)
        log.info("MLflow parent run %s continued: finished jobs are not run again", run_id)
    else:
        name = f"{config.tracking.experiment_name}-sweep-{sweep_dir.name}"
        tags[SWEEP_OVERRIDES_TAG] = " ".join(config.hydra.overrides.task)
        run_id = client.create_run(experiment_id, run_name=name, tags=tags | liveness.owner_tags()).info.run_id
        log.info("MLflow parent run %s (%s)", run_id, name)
    HEARTBEATS[run_id] = liveness.Heartbeat(client, run_id, config.tracking.heartbeat_s)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    record = {"parent_run_id": run_id, "tracking_uri": config.tracking.uri}
    (sweep_dir / SWEEP_RECORD).write_text(json.dumps(record, indent=2) + "\n")
    return run_id


def reopen_parent(client: MlflowClient, reference: str, dead_after_s: float) -> str:
    """The parent run of an earlier sweep (by run id or sweep folder), claimed by this process (``liveness.claim``).

    A sweep whose driver still runs elsewhere is refused, with its pid and host.
    """
    parent, _ = reports.sweep_parent(reference)
    try:
        run = client.get_run(parent)
    except MlflowException as exc:
        raise UserError(
            f"sweep.resume: no run {parent} in {client.tracking_uri}. Fix: pass the parent run id or the sweep folder"
        ) from exc
    if run.data.tags.get(SWEEP_ROLE_TAG) != SWEEP_PARENT_ROLE:
        raise UserError(f"sweep.resume: run {parent} is not a sweep's parent run. Fix: pass the parent run id")
    liveness.claim(client, parent, dead_after_s, finished_too=True)  # a finished sweep may get more jobs
    return parent


STOPPED_AGAIN = "stopped again: exiting without the sweep's summary (mnist-exp-report writes it)"


def forget(parent: str) -> None:
    """This process no longer holds the sweep open: it is not closed again, and its parent stops beating."""
    OPEN_SWEEPS.pop(parent, None)
    if (heart := HEARTBEATS.pop(parent, None)) is not None:
        heart.stop()


def mark_stopped(config: DictConfig, parent: str) -> None:
    """An interrupted sweep's record: its parent, and the jobs still marked RUNNING (their worker was
    stopped before it could say so), end KILLED. Their checkpoints stay in their run folders for ``resume``."""
    forget(parent)
    client = store.open_store(config.tracking.uri)
    client.set_terminated(parent, "KILLED")
    for run in reports.children(client, parent):
        if run.info.status == "RUNNING":
            client.set_terminated(run.info.run_id, "KILLED")


def close(config: DictConfig, parent: str, interrupted: bool) -> None:
    """Summarise the sweep onto its parent and end it: FINISHED, FAILED (no job finished) or KILLED.

    An interrupted sweep was marked first (``mark_stopped``, by ``close_interrupted``).
    """
    forget(parent)
    client = store.open_store(config.tracking.uri)
    try:
        summary = reports.publish(client, parent, Path(config.hydra.sweep.dir), config.objective)
        finished, failed = summary.finished, summary.failed
    except Exception:  # the parent still ends, with a status that says what the jobs did
        log.exception("could not write the summary of sweep %s; its parent run ends all the same", parent)
        statuses = [run.info.status for run in reports.children(client, parent)]
        finished, failed = statuses.count("FINISHED"), statuses.count("FAILED")
    stopped = None if interrupted else failed_enough(client, parent, config.sweep.max_failures)
    status = "KILLED" if interrupted else "FINISHED" if finished and not stopped else "FAILED"
    if stopped:
        client.set_tag(parent, STOP_REASON_TAG, stopped)
        FAILED_SWEEPS[parent] = (
            f"{stopped}. Its parent run {parent} ended FAILED with the summary of the {finished} finished. "
            "Fix: correct what failed, then run the same command again with sweep.resume=<the parent run id>"
        )
    elif status == "FAILED":
        FAILED_SWEEPS[parent] = (
            f"no job of the sweep finished ({f'{failed} failed' if failed else 'no job ran'}); its parent run "
            f"{parent} ended FAILED. Fix: read the jobs' error tags (mnist-exp-report shows them), correct the "
            "config, run again"
        )
    if not interrupted:
        client.set_terminated(parent, status)
    else:
        log.warning("sweep interrupted: parent run %s ends KILLED with the summary of what finished", parent)


def close_interrupted() -> None:
    """End every sweep this process opened and did not close: what a Ctrl-C or SIGTERM left open.

    Every parent is marked KILLED first, holding further stops until it is; then each gets the summary
    of what finished. A second stop meanwhile exits at once (``STOPPED_AGAIN``): the record is kept.
    """
    marked = []
    with stops.deferred():
        for parent, config in list(OPEN_SWEEPS.items()):
            os.environ.pop(PARENT_ENV, None)
            try:
                mark_stopped(config, parent)
                marked.append((parent, config))
            except Exception:  # the store may be what failed; the stop goes on
                log.exception("could not close the interrupted sweep's parent run %s", parent)
    with stops.exit_at_once(STOPPED_AGAIN):
        for parent, config in marked:
            try:
                close(config, parent, interrupted=True)
            except Exception:
                log.exception("could not write the summary of the interrupted sweep %s", parent)
