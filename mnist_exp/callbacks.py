"""Keras callbacks that end training early: on a diverged loss, and on Ctrl-C, SIGTERM or a time-limit warning."""

from __future__ import annotations

import math
import signal
import threading

import keras

from mnist_exp.stops import STOP_SIGNALS, TIME_LIMIT_SIGNAL, Stopped, raise_if_pending
from mnist_exp.tracking.names import ERROR_TAG


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite."""

    def __init__(self, epoch: int, loss: float) -> None:
        super().__init__(
            f"training diverged: loss {loss} at epoch {epoch}. "
            "Fix: lower optimizer.learning_rate, or use lr_schedule=cosine"
        )
        self.epoch = epoch
        self.tags = {ERROR_TAG: "diverged", f"{ERROR_TAG}.epoch": str(epoch), f"{ERROR_TAG}.message": str(self)}


class StopOnDivergence(keras.callbacks.Callback):
    """Ends training with ``DivergedError`` after an epoch whose training loss is NaN or infinite."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        loss = float((logs or {}).get("loss", 0.0))
        if not math.isfinite(loss):
            raise DivergedError(epoch + 1, loss)


class StopOnSignal(keras.callbacks.Callback):
    """While training, Ctrl-C and SIGTERM stop it at the next batch or epoch boundary, as ``Stopped``.

    So does SIGUSR2, SLURM's warning before a time limit, where someone handles it
    (submitit does, in its jobs): the run is recorded KILLED first, and the launcher
    then hands the signal to that handler, which requeues the job.

    Raised wherever Python happens to be, the interrupt sometimes landed while
    TensorFlow was making an epoch's data iterator, and the process aborted
    ("free(): invalid next size") before the run was recorded KILLED. A second
    signal raises at once. Use as a context manager around ``fit``; it changes
    nothing off the main thread, and leaves an ignored SIGINT ignored.

    Its batch hooks are also one of ``mnist_exp.speed``'s tricks.
    """

    HANDLED_ELSEWHERE = (TIME_LIMIT_SIGNAL,)  # watched only where a Python handler waits for them

    def __init__(self) -> None:
        super().__init__()
        self.received: int | None = None
        self.stopped = False  # the KeyboardInterrupt for ``received`` was raised
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopOnSignal:
        raise_if_pending()  # a sweep's driver noted a stop just before this job's training
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    self._previous[signum] = signal.signal(signum, self._note)
            for signum in self.HANDLED_ELSEWHERE:
                if callable(signal.getsignal(signum)):
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
            raise Stopped(signum)
        self.received = signum

    def _stop_if_signalled(self, *args: object, **kwargs: object) -> None:
        if self.received is not None and not self.stopped:
            self.stopped = True
            raise Stopped(self.received)

    on_train_batch_end = on_test_batch_end = on_epoch_begin = on_epoch_end = _stop_if_signalled
