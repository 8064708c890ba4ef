"""``hydra/launcher=mnist_slurm`` (``launcher=slurm``): hydra-submitit-launcher's SLURM launcher, for jobs that
survive their cluster.

- A job near its time limit (SLURM's SIGUSR2) ends its epoch's run KILLED with the reason
  "time limit"; submitit then calls ``checkpoint``, which resubmits the job with
  ``resume=<its run>``, and requeues it: the job continues in the same MLflow run.
- Each job is waited on through ``mnist_exp.cluster.waiting``: a job cancelled, lost with its
  node or never schedulable ends on its own (recorded by ``mnist_exp.tracking.sweeps``), and
  the other jobs run to the end.
- ``sweep.resume`` first cancels the jobs the earlier sweep left in the queue; their runs
  end KILLED with their checkpoints, and the continued sweep resumes them.

Light at import (Hydra imports every plugin at start-up): submitit and MLflow load at launch.
"""

# No ``from __future__ import annotations``: Hydra's plugin scan runs this module outside sys.modules,
# where dataclasses cannot resolve string annotations.
import logging
import math
import os
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_submitit_launcher import submitit_launcher
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf, SlurmQueueConf
from omegaconf import MISSING, OmegaConf

from mnist_exp import stops
from mnist_exp.tracking.names import PARENT_ENV

log = logging.getLogger(__name__)
SWEEP_COMMENT = "mnist-exp sweep {parent}"  # each job's SLURM comment: which sweep submitted it
EXECUTOR_KEYS = {"submitit_folder", "max_num_timeout"}  # what the executor takes when it is made
CANCEL_LIMIT_S = 180  # how long cancelled jobs may take to leave the queue (SLURM's KillWait and more)


@dataclass
class MnistSlurmConf(SlurmQueueConf):
    """hydra-submitit-launcher's SLURM settings, and how its jobs are watched (values in conf/launcher/slurm.yaml)."""

    _target_: str = "hydra_plugins.mnist_exp_launchers.slurm.SlurmLauncher"
    # Seconds between looks at the queue while the jobs run.
    poll_s: float = MISSING
    # A job pending this long is reported with SLURM's reason (again after as long).
    pending_report_s: float = MISSING
    # A job that looks ended or gone from the queue this long without its result is lost (its run KILLED).
    lost_after_s: float = MISSING


ConfigStore.instance().store(group="hydra/launcher", name="mnist_slurm", node=MnistSlurmConf, provider="mnist_exp")


class SlurmLauncher(submitit_launcher.SlurmLauncher):
    """Submits each sweep job as a task of a SLURM array, and is itself the callable each task runs."""

    def __init__(self, poll_s: float, pending_report_s: float, lost_after_s: float, **params: Any) -> None:
        super().__init__(**params)
        self.poll_s, self.pending_report_s, self.lost_after_s = poll_s, pending_report_s, lost_after_s
        self._earlier_jobs_checked = False
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}  # the submitting process's alone

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __call__(self, *args: Any) -> JobReturn:
        """Run the job (on its node); hand a time-limit stop on to submitit once the run is recorded."""
        try:
            return super().__call__(*args)
        except SystemExit as exc:
            if stops.stopping_signal(exc) == stops.TIME_LIMIT_SIGNAL:
                signal.raise_signal(stops.TIME_LIMIT_SIGNAL)  # submitit's handler: checkpoint(), requeue, exit
            raise

    def checkpoint(self, sweep_overrides: list[str], *args: Any) -> Any:
        """What submitit requeues at the time limit: this job again, continuing the run it trained."""
        import submitit

        from mnist_exp.tracking.multirun import current_run

        overrides = [o for o in sweep_overrides if not o.startswith("resume=")]
        if (run_id := current_run()) is not None:
            overrides.append(f"resume={run_id}")
        log.info("requeued to continue run %s", run_id)
        return submitit.helpers.DelayedSubmission(self, overrides, *args)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        """Submit the jobs as one array, wait for each to end, and return a result for every one."""
        from mnist_exp.cluster.waiting import Submitted, wait

        parent = os.environ.get(PARENT_ENV)
        with self._lock:
            if parent and self.config.get("sweep", {}).get("resume") and not self._earlier_jobs_checked:
                self.cancel_earlier_jobs(parent)
            self._earlier_jobs_checked = True
        executor = self.executor(parent)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        numbers = range(initial_job_idx, initial_job_idx + len(job_overrides))
        state = Singleton.get_state()
        args = [
            (list(o), "hydra.sweep.dir", n, f"job_id_for_{n}", state)
            for o, n in zip(job_overrides, numbers, strict=True)
        ]
        jobs = executor.map_array(self, *zip(*args, strict=True))
        submitted = [Submitted(job, n, list(o)) for job, n, o in zip(jobs, numbers, job_overrides, strict=True)]
        for item in submitted:
            log.info("\t#%d : SLURM job %s : %s", item.number, item.job_id, " ".join(item.overrides))
        wait(submitted, self.poll_s, self.pending_report_s, self.lost_after_s)
        return [item.result if item.result is not None else self.without_result(item) for item in submitted]

    def cancel_earlier_jobs(self, parent: str) -> None:
        """Before a continued sweep submits: cancel its earlier jobs still queued or running, and end their runs."""
        from mnist_exp.cluster.waiting import cancel_queued
        from mnist_exp.tracking import sweeps

        cancelled = cancel_queued(SWEEP_COMMENT.format(parent=parent), self.poll_s, CANCEL_LIMIT_S)
        if cancelled:
            reason = f"cancelled by sweep.resume (SLURM jobs {', '.join(cancelled)})"
            sweeps.end_running_jobs(self.config, parent, reason)

    def executor(self, parent: str | None) -> Any:
        """A submitit SLURM executor with this launcher's settings; each job's comment names the sweep."""
        import submitit

        executor = submitit.AutoExecutor(
            cluster=self._EXECUTOR,
            folder=self.params["submitit_folder"],
            slurm_max_num_timeout=self.params["max_num_timeout"],
        )
        shared = set(OmegaConf.structured(BaseQueueConf).keys())
        params = {k if k in shared else f"slurm_{k}": v for k, v in self.params.items() if k not in EXECUTOR_KEYS}
        if parent and not params.get("slurm_comment"):
            params["slurm_comment"] = SWEEP_COMMENT.format(parent=parent)
        executor.update_parameters(**params)
        return executor

    def without_result(self, item: Any) -> JobReturn:
        """Record a job that ended with no result (lost, cancelled, unschedulable, failed outside its run); NaN."""
        from mnist_exp.tracking import sweeps

        log.error("sweep job %d: %s", item.number, item.failure)
        config = self.hydra_context.config_loader.load_sweep_config(self.config, item.overrides)
        sweeps.record_job_without_result(config, os.environ.get(PARENT_ENV), item.number, item.overrides, item.failure)
        return JobReturn(overrides=item.overrides, status=JobStatus.COMPLETED, _return_value=math.nan)
