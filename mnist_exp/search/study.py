"""An Optuna study run as a sweep: ask a trial, launch its job, tell the result, with workers that never wait.

Each of ``n_jobs`` workers asks for the next trial as soon as its last job ends, so a
slow trial holds up one worker, not a batch. Jobs report to their trial through the
study's storage (``trials.ReportToTrial``), whichever launcher or machine runs them.
A study continued (same storage and name) first re-runs the trials an interruption
left RUNNING, then asks new ones until it holds ``n_trials``.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import optuna
from optuna.trial import TrialState

from mnist_exp.search.job_trial import JobTrial, trial_id
from mnist_exp.search.space import ConditionalSpace
from mnist_exp.tracking.names import PRUNED_EPOCH_ATTR

log = logging.getLogger(__name__)
Launch = Callable[[list[str], int], float | None]  # a job's overrides and number -> its objective (None: failed)


@dataclass
class StudyRun:
    """One sweep over a study: what to sample, how many trials in all, how many at a time."""

    study: optuna.Study
    storage: optuna.storages.BaseStorage  # the study's, for what a Trial object does not say
    url: str
    search: ConditionalSpace  # what each trial samples, and the overrides its job gets
    n_trials: int
    n_jobs: int
    first_job: int = 0
    max_failures: int | None = None  # no new trials once this many have failed (sweep.max_failures)
    stopping: threading.Event = field(default_factory=threading.Event)
    failed_out: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._leftover = [t.number for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
        self._to_ask = max(0, self.n_trials - len(self.study.get_trials(deepcopy=False)))
        self._next_job = self.first_job
        if self._leftover:
            log.info(
                "study %s: running again the trials an interruption left: %s", self.study.study_name, self._leftover
            )

    def next_trial(self) -> tuple[optuna.Trial, list[str], int] | None:
        """The next trial to run (an interrupted one first), its overrides and its job number; None when done."""
        with self._lock:
            if self.stopping.is_set() or self.failed_out.is_set():
                return None
            if self._leftover:
                number = self._leftover.pop(0)
                trial = optuna.Trial(self.study, self.trial_id(number))
                params = self.storage.get_trial(self.trial_id(number)).params
            elif self._to_ask > 0:
                self._to_ask -= 1
                trial = self.study.ask(self.search.space)
                params = self.search.sample(trial)
            else:
                return None
            job, self._next_job = self._next_job, self._next_job + 1
        job_trial = JobTrial(self.url, self.study.study_name, trial.number)
        environment = [f"+hydra.job.env_set.{k}='{v}'" for k, v in job_trial.env().items()]
        overrides = [*self.search.overrides(params), *environment]
        return trial, overrides, job

    def trial_id(self, number: int) -> int:
        return trial_id(self.storage, self.study.study_name, number)

    def tell(self, trial: optuna.Trial, value: float | None) -> None:
        """Record how the trial's job ended: pruned, failed, or its objective."""
        attrs = self.storage.get_trial(self.trial_id(trial.number)).user_attrs  # as the job left them
        if PRUNED_EPOCH_ATTR in attrs:
            self.study.tell(trial, state=TrialState.PRUNED)
        elif value is None or not math.isfinite(value):
            self.study.tell(trial, state=TrialState.FAIL)
            failed = len(self.study.get_trials(deepcopy=False, states=(TrialState.FAIL,)))
            if self.max_failures is not None and failed >= self.max_failures and not self.failed_out.is_set():
                log.error(
                    "study %s: %d trials failed (sweep.max_failures): no new trials", self.study.study_name, failed
                )
                self.failed_out.set()
        else:
            self.study.tell(trial, value)

    def _work(self, launch: Launch) -> None:
        """Launch trials one after another until there are none left to run."""
        while (item := self.next_trial()) is not None:
            trial, overrides, job = item
            value = launch(overrides, job)
            if not self.stopping.is_set():
                self.tell(trial, value)

    def run(self, launch: Launch) -> None:
        """Run trials on ``n_jobs`` workers until the study holds ``n_trials``; a stop ends it at once.

        One worker runs here, in the main thread (an in-process launcher's job needs it for
        its signal handlers). More are daemon threads: on Ctrl-C or SIGTERM this process does
        not wait for the jobs they launched (each job stops on its own signal, or with its process).
        """
        failures: list[BaseException] = []
        finished = threading.Semaphore(0)

        def worker() -> None:
            try:
                self._work(launch)
            except BaseException as exc:  # handed to the waiting thread
                failures.append(exc)
            finally:
                finished.release()

        if self.n_jobs == 1:
            self._work(launch)
            return
        workers = [threading.Thread(target=worker, name=f"trial-worker-{i}", daemon=True) for i in range(self.n_jobs)]
        for thread in workers:
            thread.start()
        try:
            for _ in workers:
                finished.acquire()
                if failures:
                    raise failures[0]
        except BaseException:
            self.stopping.set()  # no new trials
            raise
