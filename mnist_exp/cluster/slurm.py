"""What SLURM's queue says of a sweep's jobs, asked with ``squeue`` (no accounting database needed).

``sacct`` answers only where SLURM keeps accounting (slurmdbd); it is asked, where it
answers, only for the final state of a job that SLURM has forgotten (after ``MinJobAge``).
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass

log = logging.getLogger(__name__)

# Pending reasons that no wait mends: the job asks for more than the partition has or allows.
UNSCHEDULABLE = frozenset(
    {
        "PartitionConfig",
        "BadConstraints",
        "PartitionNodeLimit",
        "PartitionTimeLimit",
        "ReqNodeNotAvail",
        "InvalidAccount",
        "InvalidQOS",
        "QOSMaxCpuPerJobLimit",
        "QOSMaxMemoryPerJob",
        "QOSMaxGRESPerJob",
    }
)
# States of a job that has ended; every other state (REQUEUED, SIGNALING, COMPLETING ...) is still in play.
ENDED = frozenset(
    {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
     "REVOKED", "TIMEOUT"}
)  # fmt: skip
QUERY_TIMEOUT_S = 30


@dataclass(frozen=True)
class QueuedJob:
    """One job (or array task) in SLURM's queue: its id, state, the reason it waits, and its comment."""

    job_id: str
    state: str
    reason: str
    comment: str

    @property
    def ended(self) -> bool:
        """The job has ended (its state is final); SLURM keeps it in the queue for ``MinJobAge``."""
        return self.state in ENDED

    @property
    def unschedulable(self) -> bool:
        """Pending for a reason that no wait mends (``ReqNodeNotAvail, UnavailableNodes:...`` included)."""
        return self.state == "PENDING" and self.reason.split(",")[0] in UNSCHEDULABLE


def queue(job_ids: list[str] | None = None) -> dict[str, QueuedJob] | None:
    """The jobs SLURM knows (of ``job_ids``' arrays, or all), by id; None if SLURM did not answer.

    Every state is asked for: squeue's default shows only pending, running and completing jobs,
    which hides a job while it is requeued (``REQUEUED``) as well as the state a job ended in.
    """
    command = ["squeue", "--noheader", "--array", "--states=all", "--format=%i|%T|%r|%k"]
    if job_ids is not None:
        mains = sorted({job_id.split("_")[0] for job_id in job_ids})
        if not mains:
            return {}
        command.append(f"--jobs={','.join(mains)}")
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=QUERY_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("squeue did not answer (%s); asking again", exc)
        return None
    if result.returncode != 0:
        if "Invalid job id" in result.stderr:  # every job asked about has left the queue
            return {}
        log.warning("squeue failed (%s); asking again", result.stderr.strip()[:300])
        return None
    jobs = {}
    for line in result.stdout.splitlines():
        job_id, state, reason, comment = [*line.split("|", 3), "", "", ""][:4]
        jobs[job_id.strip()] = QueuedJob(job_id.strip(), state.strip(), reason.strip(), comment.strip())
    return jobs


def final_state(job_id: str) -> str | None:
    """The state SLURM's accounting gives a job that has left the queue (CANCELLED, NODE_FAIL ...); None without it.

    Asked only once ``queue`` no longer lists the job (after ``MinJobAge``), since ``queue`` gives an ended job's state.
    """
    try:
        result = subprocess.run(
            ["sacct", "--noheader", "--parsable2", "--allocations", f"--jobs={job_id}", "--format=State"],
            capture_output=True,
            text=True,
            timeout=QUERY_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    states = result.stdout.split()
    return states[-1] if result.returncode == 0 and states else None


def cancel(job_ids: list[str]) -> None:
    """Cancel jobs (SIGTERM to their processes, then SIGKILL after SLURM's KillWait)."""
    if job_ids:
        subprocess.run(["scancel", *job_ids], capture_output=True, timeout=QUERY_TIMEOUT_S, check=False)
