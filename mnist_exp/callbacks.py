"""Keras callbacks that report training to MLflow while it runs."""

from __future__ import annotations

import json
import math
import signal
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import keras

from mnist_exp.sweep import ERROR_TAG
from mnist_exp.tracking.record import RunRecord

EPOCH_TIME = "epoch_time_s"  # an epoch's wall time, as a metric and in the checkpoint's history
TRAIN_TIME = "epoch_train_time_s"  # its training part, before validation (in the checkpoint's history)


def metric_name(key: str) -> str:
    """Keras log keys to MLflow metric names: ``loss`` -> ``train_loss``, ``val_loss`` stays."""
    return key if key.startswith("val_") else f"train_{key}"


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite."""

    def __init__(self, epoch: int, loss: float) -> None:
        super().__init__(
            f"training diverged: loss {loss} at epoch {epoch}. Fix: lower optimizer.lr, or use lr_schedule=cosine"
        )
        self.epoch = epoch
        self.tags = {ERROR_TAG: "diverged", f"{ERROR_TAG}.epoch": str(epoch), f"{ERROR_TAG}.message": str(self)}


class MlflowEpochLogger(keras.callbacks.Callback):
    """Logs each epoch's metrics, wall time, training throughput and learning rate as the epoch ends.

    Steps are 1-based epoch numbers. A thread of its own writes to the store, so
    the next epoch starts without waiting; ``close`` waits until all is written
    (or journaled: see ``RunRecord``). ``times`` holds the last epoch's wall and training times.
    """

    def __init__(self, record: RunRecord, train_samples: int) -> None:
        super().__init__()
        self.record, self.train_samples = record, train_samples
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow-epoch-logger")
        self._pending: list[Future] = []
        self.times: dict[str, float] = {}

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()
        self._train_end: float | None = None

    def on_test_begin(self, logs: dict | None = None) -> None:
        self._train_end = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        now = time.perf_counter()
        self.times = {EPOCH_TIME: now - self._start, TRAIN_TIME: (self._train_end or now) - self._start}
        metrics = {metric_name(k): float(v) for k, v in (logs or {}).items()}
        metrics[EPOCH_TIME] = self.times[EPOCH_TIME]
        metrics["train_samples_per_s"] = self.train_samples / self.times[TRAIN_TIME]
        metrics["learning_rate"] = float(self.model.optimizer.learning_rate)  # where the schedule ended the epoch
        self._pending.append(self._writer.submit(self.record.log_metrics, metrics, step=epoch + 1))

    def close(self, check: bool = True) -> None:
        """Wait until every epoch's metrics are written or journaled; with ``check``, raise the first failure."""
        self._writer.shutdown(wait=True)
        if check:
            for future in self._pending:
                future.result()


class StopOnDivergence(keras.callbacks.Callback):
    """Ends training with ``DivergedError`` after an epoch whose training loss is NaN or infinite."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        loss = float((logs or {}).get("loss", 0.0))
        if not math.isfinite(loss):
            raise DivergedError(epoch + 1, loss)


class EpochCheckpoint(keras.callbacks.Callback):
    """After every epoch, saves ``model`` with its optimizer state, the epochs done and their history.

    The history (Keras's per-epoch logs, times included) covers every epoch since the
    run began, so a resumed run draws its curves and totals from it, store or no store.
    """

    MODEL = "model.keras"
    STATE = "state.json"

    def __init__(
        self, folder: Path, model: keras.Model, timer: MlflowEpochLogger, history: dict[str, list[float]]
    ) -> None:
        super().__init__()
        self.folder, self.saved, self.timer = folder, model, timer  # not self.model: fit sets that to what it trains
        self.history: dict[str, list[float]] = {k: list(v) for k, v in (history or {}).items()}
        folder.mkdir(parents=True, exist_ok=True)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        for key, value in ((logs or {}) | self.timer.times).items():
            self.history.setdefault(key, []).append(float(value))
        partial = self.folder / f".{self.MODEL}"
        self.saved.save(partial)
        partial.replace(self.folder / self.MODEL)
        state = self.folder / self.STATE
        state.with_suffix(".tmp").write_text(json.dumps({"epochs_done": epoch + 1, "history": self.history}))
        state.with_suffix(".tmp").replace(state)

    @classmethod
    def load(cls, folder: Path) -> tuple[Path | None, int, dict[str, list[float]]]:
        """The model file, epochs done and history of the checkpoint in ``folder`` (None, 0, {} if none)."""
        state = folder / cls.STATE
        if not state.is_file() or not (folder / cls.MODEL).is_file():
            return None, 0, {}
        saved = json.loads(state.read_text())
        return folder / cls.MODEL, int(saved["epochs_done"]), saved.get("history", {})


class StopOnSignal(keras.callbacks.Callback):
    """While training, Ctrl-C and SIGTERM stop it at the next batch or epoch boundary, as KeyboardInterrupt.

    Raised wherever Python happens to be, the interrupt sometimes landed while
    TensorFlow was making an epoch's data iterator, and the process aborted
    ("free(): invalid next size") before the run was recorded KILLED. A second
    signal raises at once. Use as a context manager around ``fit``; it changes
    nothing off the main thread, and leaves an ignored SIGINT ignored.

    Its batch hooks also keep Keras from handing every batch's end to a thread
    pool (what Keras does when no callback has batch hooks): on the 2-core CPU
    the reference run took 46.5 and 47.0 s with them, 49.2 and 49.6 s without.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        super().__init__()
        self.received: int | None = None
        self.stopped = False  # the KeyboardInterrupt for ``received`` was raised
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    self._previous[signum] = signal.signal(signum, self._note)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        if exc_type is None:  # a signal noted after fit's last hook stops the run now
            self._stop_if_signalled()

    def _note(self, signum: int, frame: object) -> None:
        if self.received is not None:
            self.stopped = True
            raise KeyboardInterrupt(f"signal {signum}")
        self.received = signum

    def _stop_if_signalled(self, *args: object, **kwargs: object) -> None:
        if self.received is not None and not self.stopped:
            self.stopped = True
            raise KeyboardInterrupt(f"signal {self.received}")

    on_train_batch_end = on_test_batch_end = on_epoch_begin = on_epoch_end = _stop_if_signalled
