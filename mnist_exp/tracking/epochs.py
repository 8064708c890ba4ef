"""The Keras callback that logs each epoch to the run's record as the epoch ends."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor

import keras

from mnist_exp.tracking.names import EPOCH_TIME, EPOCH_TRAIN_TIME, LEARNING_RATE, SAMPLES_PER_S
from mnist_exp.tracking.record import RunRecord


def metric_name(key: str) -> str:
    """Keras log keys to MLflow metric names: ``loss`` -> ``train_loss``, ``val_loss`` stays."""
    return key if key.startswith("val_") else f"train_{key}"


class MlflowEpochLogger(keras.callbacks.Callback):
    """Logs each epoch's metrics, wall time, training throughput and learning rate as the epoch ends.

    Steps are 1-based epoch numbers. A thread of its own writes to the store, so
    the next epoch starts without waiting; ``close`` waits until all is written
    (or journaled: see ``RunRecord``). ``times`` holds the last epoch's wall and training times.
    """

    def __init__(self, record: RunRecord, train_samples: int, logged: set[int] | None = None) -> None:
        super().__init__()
        self.record, self.train_samples = record, train_samples
        self.logged = set(logged or ())  # epochs (steps) already logged, by an earlier process of the run
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
        self.times = {EPOCH_TIME: now - self._start, EPOCH_TRAIN_TIME: (self._train_end or now) - self._start}
        metrics = {metric_name(k): float(v) for k, v in (logs or {}).items()}
        metrics[EPOCH_TIME] = self.times[EPOCH_TIME]
        metrics[SAMPLES_PER_S] = self.train_samples / self.times[EPOCH_TRAIN_TIME]
        metrics[LEARNING_RATE] = float(self.model.optimizer.learning_rate)  # where the schedule ended the epoch
        self._log(metrics, epoch + 1)

    def catch_up(self, history: dict[str, list[float]]) -> None:
        """Log the epochs of a checkpoint's ``history`` that never reached the record (the process died first)."""
        epochs = len(history.get(EPOCH_TIME, []))
        for epoch in range(epochs):
            if epoch + 1 in self.logged:
                continue
            logs = {
                k: v[epoch] for k, v in history.items() if k not in (EPOCH_TIME, EPOCH_TRAIN_TIME) and len(v) > epoch
            }
            metrics = {metric_name(k): float(v) for k, v in logs.items()}
            metrics[EPOCH_TIME] = history[EPOCH_TIME][epoch]
            metrics[SAMPLES_PER_S] = self.train_samples / history[EPOCH_TRAIN_TIME][epoch]
            self._log(metrics, epoch + 1)

    def _log(self, metrics: dict[str, float], step: int) -> None:
        """Each epoch once: one an earlier process of the run logged (and its checkpoint missed) is not logged again."""
        if step in self.logged:
            return
        self.logged.add(step)
        self._pending.append(self._writer.submit(self.record.log_metrics, metrics, step=step))

    def close(self, check: bool = True) -> None:
        """Wait until every epoch's metrics are written or journaled; with ``check``, raise the first failure."""
        self._writer.shutdown(wait=True)
        if check:
            for future in self._pending:
                future.result()
