"""Waiting for a sweep's submitit jobs on SLURM: each ends with its result, or with why it has none.

submitit's own wait asks ``sacct`` for a job's state, which fails on a cluster without
accounting: a job that died without writing its result was then waited on forever, and
one job's error aborted the whole sweep. Here each job is watched through its result file
and ``squeue``: a job that ends without a result is lost, one that SLURM can
never schedule is cancelled at once, and one that waits long is reported with SLURM's reason.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from mnist_exp.cluster import slurm

log = logging.getLogger(__name__)


@dataclass
class Submitted:
    """A submitted job, its number in the sweep, and how it ended: ``result``, or ``failure`` (why there is none)."""

    job: Any  # submitit.Job
    number: int
    overrides: list[str]
    result: Any = None  # the JobReturn the job pickled
    failure: str | None = None

    @property
    def job_id(self) -> str:
        return str(self.job.job_id)

    def has_result(self) -> bool:
        return self.job.paths.result_pickle.exists()

    def collect(self) -> None:
        """Read the job's result; an error the job pickled becomes its ``failure``."""
        try:
            (self.result,) = self.job.results()
        except Exception as exc:  # the job failed outside its run (its run's own failures are results)
            self.failure = f"SLURM job {self.job_id} failed: {last_error(str(exc))[:500]}"


def last_error(text: str) -> str:
    """The last ``SomeError: message`` line of a traceback (the whole text's first line if there is none)."""
    errors = [line.strip() for line in text.splitlines() if re.match(r"^\s*[\w.]+(Error|Exception)\b", line)]
    return errors[-1] if errors else text.strip().split("\n")[0]


def wait(submitted: list[Submitted], poll_s: float, pending_report_s: float, lost_after_s: float) -> None:
    """Wait until every job has its result or its failure; see the module's docstring.

    A job that looks ended or gone without a result for ``lost_after_s`` is lost (a requeued job
    looks so for a moment, and a result file can trail a job's end)."""
    waiting = {s.job_id: s for s in submitted}
    absent_since: dict[str, float] = {}
    last_state: dict[str, str] = {}  # the ended state squeue last gave a job, kept once SLURM forgets it
    pending_since: dict[str, float] = {}
    reported: dict[str, float] = {}
    while waiting:
        for job_id, item in list(waiting.items()):
            if item.has_result():
                item.collect()
                del waiting[job_id]
        queued = slurm.queue(list(waiting)) if waiting else None
        now = time.monotonic()
        for job_id, item in list(waiting.items()) if queued is not None else ():
            entry = queued.get(job_id)
            if entry is None or entry.ended:
                # A requeued job shows the state its steps ended in (FAILED), or drops out of squeue's answer,
                # until SLURM has stopped them and set it PENDING again; a result file can trail a job's end.
                if entry is not None:
                    last_state[job_id] = entry.state
                if now - absent_since.setdefault(job_id, now) >= max(poll_s, lost_after_s) and not item.has_result():
                    state = last_state.get(job_id) or slurm.final_state(job_id)
                    item.failure = (
                        f"SLURM job {job_id} ended without a result "
                        f"({state or 'its final state is unknown without SLURM accounting'})"
                    )
                    del waiting[job_id]
                continue
            absent_since.pop(job_id, None)  # back in the queue: requeued
            last_state.pop(job_id, None)
            if entry.unschedulable:
                slurm.cancel([job_id])
                item.failure = (
                    f"SLURM cannot schedule job {job_id} (sweep job {item.number}): {entry.reason}. "
                    "Fix: ask for what a node of the partition has (hydra.launcher.cpus_per_task, mem_gb, "
                    "gpus_per_node, timeout_min) or choose another partition (hydra.launcher.partition)"
                )
                log.error("%s; cancelled", item.failure)
                del waiting[job_id]
            elif entry.state == "PENDING":
                waited = now - pending_since.setdefault(job_id, now)
                if waited >= pending_report_s and now - reported.get(job_id, -1e9) >= pending_report_s:
                    reported[job_id] = now
                    log.warning(
                        "SLURM job %s (sweep job %d) has waited %.0f s in the queue: %s",
                        job_id, item.number, waited, entry.reason,
                    )  # fmt: skip
            else:
                pending_since.pop(job_id, None)
        if waiting:
            time.sleep(poll_s)


def cancel_queued(comment: str, poll_s: float, limit_s: float) -> list[str]:
    """Cancel the jobs in the queue whose comment is ``comment``, and wait until they have left it; their ids."""
    queued = slurm.queue() or {}
    found = sorted(job.job_id for job in queued.values() if job.comment == comment and not job.ended)
    if not found:
        return []
    log.warning("cancelling SLURM jobs %s, left in the queue by the sweep this one continues", ", ".join(found))
    slurm.cancel(found)
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        left = slurm.queue(found)
        if left is not None and all(job.ended for job in left.values()):
            break
        time.sleep(poll_s)
    return found
