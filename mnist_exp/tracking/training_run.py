"""One training start, owned from "which run is this?" to "how did it end?": ``TrainingRun``.

What lives here: the store, opened once per start; the choice between a new run, the run
``resume`` names, a FINISHED twin reported instead of training, and an unfinished run of
this config continued, said in one log line; the claim on a continued run; the run's
record and checkpoint callbacks; its end, FINISHED, KILLED or FAILED. What must not: the
config's checks (``mnist_exp.schema``), the data, the model and the fit (``mnist_exp.fitting``).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from threading import Event

import keras
import mlflow
from mlflow.entities import Run
from omegaconf import DictConfig, OmegaConf

from mnist_exp.errors import ConfigError
from mnist_exp.stops import deferred
from mnist_exp.tracking import liveness, multirun, names, runs, store
from mnist_exp.tracking.checkpoints import BestEpoch, EpochCheckpoint, checkpoint_folder, intact_checkpoint, run_folder
from mnist_exp.tracking.epochs import MlflowEpochLogger
from mnist_exp.tracking.record import RunRecord, StoreAwayError, open_folder, retrying
from mnist_exp.tracking.registry import stored_config, with_current_recording

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResumePoint:
    """Where a continued run starts again: its checkpoint (None: from the start), epochs done and their history."""

    run: Run  # as it was before this process claimed it
    model_file: Path | None
    epochs_done: int
    history: dict[str, list[float]]


@dataclass
class Checkpointing:
    """The callbacks that keep a run's progress: per-epoch metrics, the checkpoint, the best epoch's weights."""

    epochs: MlflowEpochLogger
    checkpoint: EpochCheckpoint
    best: BestEpoch


class TrainingRun:
    """One training start: made, it decides which run it is; then, as a context, ``begin``, the fit, ``finish``.

    ``cfg`` is what the run trains (a continued run's own logged config). Exactly one of
    these holds once made: ``done`` is a FINISHED run to report, ``start`` a claimed run
    to continue, or neither: a new run. Leaving the block by an exception gives a
    claimed run back if it never began, and otherwise ends it KILLED (a stop) or FAILED
    (an error), with its metrics so far and its checkpoint (``runs.recorded_stop``).
    """

    def __init__(self, cfg: DictConfig, digest: str) -> None:
        """Open the store (once for the whole start) and decide which run this start is."""
        self.cfg, self.digest = cfg, digest
        self.parent = multirun.parent_run_id()
        self.client = store.connect(cfg.tracking, patient=self.parent is not None)  # a sweep's job: nobody waits
        self.experiment_id = ""
        self.start: ResumePoint | None = None
        self.done: Run | None = None
        self.record: RunRecord | None = None
        self.stack = contextlib.ExitStack()
        try:
            with deferred():  # a stop waits for the store's call in flight (see ``deferred``)
                self.decide()
        except BaseException:  # a run claimed meanwhile goes back as it was
            self.give_back()
            raise

    def __enter__(self) -> TrainingRun:
        self.stack.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        if exc is not None and self.record is None and self.start is not None:  # claimed, never trained: as it was
            self.give_back()
        handled = self.stack.__exit__(exc_type, exc, tb)  # a begun run's end: KILLED or FAILED (recorded_stop)
        if exc is None and self.record is not None and self.record.close():
            shutil.rmtree(self.record.folder, ignore_errors=True)  # all is in the store: checkpoint and journal done
        return handled

    def decide(self) -> None:
        """The run ``resume`` names; a FINISHED twin; the sweep's earlier job with this config; a run of
        this config whose process died; or a new run. Said in one line.

        Runs of the experiment whose process died are marked KILLED first (``liveness``).
        """
        cfg, client = self.cfg, self.client
        named = self.named_run(cfg.resume) if cfg.get("resume") else None
        if named is not None:
            self.experiment_id = named.info.experiment_id
        elif self.parent is not None:
            self.experiment_id = client.get_run(self.parent).info.experiment_id
        else:
            self.experiment_id = store.experiment_id(client, cfg.tracking, cfg.objective)
        liveness.end_dead_runs(client, cfg.tracking.dead_after_s, [self.experiment_id])
        earlier = named or self.earlier_run()
        if self.done is not None:
            log.info("skipped: run %s (%s) already has this config", self.done.info.run_id, self.done.info.run_name)
            return
        if earlier is None:
            log.info("a new run of experiment %s", self.experiment_id)
            return
        how = "resumed" if named else "continued (this config left it unfinished)"
        try:
            self.continue_run(earlier, how)
        except ConfigError as exc:  # a died twin that died before its config was logged: a new run instead
            if named is not None or self.parent is not None:
                raise
            log.warning("run %s cannot be continued (%s): a new run starts", earlier.info.run_id, exc)
            runs.not_resumable(client, earlier.info.run_id)

    def earlier_run(self) -> Run | None:
        """An earlier run of this config to continue; ``done`` set instead where one FINISHED (and counts)."""
        client, digest = self.client, self.digest
        if self.cfg.training.skip_if_done:
            self.done = runs.finished_twin(client, self.experiment_id, digest)
            if self.done is not None:
                return None
        if self.parent is None:
            return runs.died_twin(client, self.experiment_id, digest)
        earlier = runs.sweep_sibling(client, self.parent, digest)  # a sweep run again: each config once
        if earlier is not None and earlier.info.status == "FINISHED":
            self.done = earlier
            return None
        return earlier

    def named_run(self, run_id: str) -> Run:
        """Run ``run_id``, to continue: a ConfigError if the store has none or it FINISHED."""
        try:
            run = self.client.get_run(run_id)
        except mlflow.exceptions.MlflowException as exc:
            uri = self.cfg.tracking.uri
            raise ConfigError(f"resume: no run {run_id} in {uri}. Fix: check the run id and the store") from exc
        if run.info.status == "FINISHED":
            raise ConfigError(f"resume: run {run_id} already FINISHED; nothing to resume")
        return run

    def continue_run(self, run: Run, how: str) -> None:
        """Claim ``run`` for this process and read where it continues; ``cfg`` becomes its logged config.

        The claim (``liveness.claim``) comes first: a run another live process runs is
        refused, and only its owner touches its folder. Writes its journal holds are pushed
        next. The checkpoint comes from the run's local folder, else from the store.
        Anything that fails after the claim gives the run back as it was.
        """
        run_id = run.info.run_id
        died = liveness.claim(self.client, run_id, self.cfg.tracking.dead_after_s)
        self.start = ResumePoint(run, None, 0, {})
        try:
            logged = self.logged_config(run)
            checkpoint = checkpoint_folder(run_folder(logged.tracking, run_id))
            self.start = ResumePoint(run, *intact_checkpoint(self.client, run_id, checkpoint))
        except BaseException:
            self.give_back()
            self.start = None
            raise
        self.cfg = logged
        done = self.start.epochs_done
        where = f"after epoch {done}" if self.start.model_file else "from its first epoch (no checkpoint)"
        log.info(
            "run %s (%s) %s: training goes on %s of %d%s",
            run_id, run.info.run_name, how, where, self.cfg.training.epochs,
            f"; its earlier process's {died}" if died else "",
        )  # fmt: skip

    def logged_config(self, run: Run) -> DictConfig:
        """The config ``run`` logged (local copy first), completed by today's recording keys, with ``resume`` set."""
        run_id = run.info.run_id
        folder = run_folder(self.cfg.tracking, run_id)
        if (folder / names.RUN_INFO).is_file():
            open_folder(folder, self.client).flush()  # what the journal holds reaches the store first
        local = folder / names.STAGED / names.CONFIG_FILE
        try:
            logged = OmegaConf.load(local) if local.is_file() else stored_config(self.client, run)
        except (mlflow.exceptions.MlflowException, OSError) as exc:
            raise ConfigError(f"resume: run {run_id} logged no {names.CONFIG_FILE}; it cannot be resumed") from exc
        original = with_current_recording(logged, self.cfg)
        original.resume = run_id
        return original

    def give_back(self) -> None:
        """End a claimed run that did not start training as it was (a RUNNING one whose process died: KILLED)."""
        if self.start is None:
            return
        info = self.start.run.info
        with deferred(), contextlib.suppress(Exception):  # the store may be what failed; the dead-run check mends it
            self.client.set_terminated(info.run_id, "KILLED" if info.status == "RUNNING" else info.status)

    def begin(self, tags: dict[str, str]) -> RunRecord:
        """Open the run's record (a new run gets ``tags``; a sweep job's is a child of its parent).

        From here on an exception ends the run KILLED or FAILED, with its checkpoint.
        """
        cfg = self.cfg
        tags = tags | dict(cfg.tracking.tags) | {names.CONFIG_HASH_TAG: self.digest}

        def create() -> str:
            if self.start is not None:
                return self.start.run.info.run_id
            return runs.start_run(
                self.client, self.experiment_id, cfg.tracking.run_name, tags, self.parent, multirun.job_number()
            )

        stopping = Event()
        # a stop meanwhile waits until the run is created and its end is in recorded_stop's hands: it ends KILLED
        with deferred(on_signal=stopping.set):
            try:
                run_id = retrying(create, cfg.tracking.retry_s, stopping, "the new run")
            except StoreAwayError as exc:
                raise store.store_error(cfg.tracking.uri, exc.__cause__ or exc) from exc
            system_metrics_s = cfg.tracking.system_metrics_s if cfg.tracking.system_metrics else None
            folder = run_folder(cfg.tracking, run_id)
            self.record = RunRecord(
                self.client, run_id, folder, cfg.tracking.retry_s, cfg.tracking.heartbeat_s, system_metrics_s
            )
            multirun.note_run(run_id)
            self.stack.enter_context(runs.recorded_stop(self.record, checkpoint_folder(folder)))
        return self.record

    def checkpoints(
        self,
        model: keras.Model,
        train_samples: int,
        monitor: str,
        maximize: bool,
        log_epoch: Callable[[int], None] | None,
    ) -> Checkpointing:
        """The run's progress callbacks: a continued run's logged epochs and history carried on."""
        record, start = self._record(), self.start
        history = start.history if start else {}
        # A continued run's epochs already logged: a store that cannot be read is taken to hold the checkpoint's.
        logged = record.logged_steps(names.EPOCH_TIME, set(range(1, start.epochs_done + 1))) if start else None
        epochs = MlflowEpochLogger(record, train_samples, logged)
        if start is not None:
            epochs.catch_up(history)
        folder = checkpoint_folder(record.folder)
        checkpoint = EpochCheckpoint(folder, model, epochs, history)
        best = BestEpoch(folder, model, monitor, maximize, history, log_epoch)
        return Checkpointing(epochs, checkpoint, best)

    def finish(self) -> None:
        """The run ends FINISHED."""
        self._record().terminate("FINISHED")

    def _record(self) -> RunRecord:
        if self.record is None:
            raise RuntimeError("TrainingRun.begin() comes first")
        return self.record


def skipped(twin: Run, metric: str) -> dict[str, float | str]:
    """The results of a finished run with the same config, reported instead of training again."""
    return {**twin.data.metrics, "objective": twin.data.metrics[metric], "run_id": twin.info.run_id, "skipped": True}
