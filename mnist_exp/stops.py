"""Why a run stops early: the signal that stopped it, and the reason its record gives.

Light (no TensorFlow): the ``mnist-exp`` command and the launcher plugins import it.
"""

from __future__ import annotations

import os
import signal

# What SLURM sends before a job's time limit when submitit submits it (``--signal=USR2@signal_delay_s``).
TIME_LIMIT_SIGNAL = signal.SIGUSR2
IN_SLURM_JOB_ENV = "SLURM_JOB_ID"


class Stopped(KeyboardInterrupt):
    """Training stopped by a signal: Ctrl-C, SIGTERM (a stop, a preemption) or a time-limit warning."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


def reason(exc: BaseException) -> str:
    """What stopped a run, in the words its ``stop.reason`` tag gives."""
    signum = getattr(exc, "signum", None)
    if signum == TIME_LIMIT_SIGNAL:
        return "time limit"
    if signum == signal.SIGTERM:
        return "preempted (SIGTERM from SLURM)" if IN_SLURM_JOB_ENV in os.environ else "SIGTERM"
    if signum == signal.SIGINT or isinstance(exc, KeyboardInterrupt):
        return "Ctrl-C"
    return "the process was asked to exit"


def stopping_signal(exc: BaseException | None) -> int | None:
    """The signal of the ``Stopped`` behind ``exc`` (itself, its cause or its context); None if none."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, Stopped):
            return exc.signum
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def is_stop(exc: BaseException) -> bool:
    """Whether ``exc`` asks the process to stop (a signal, Ctrl-C, ``sys.exit``) rather than reports a failure."""
    return isinstance(exc, KeyboardInterrupt | SystemExit)
