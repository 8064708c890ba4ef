"""Why a run stops early: the signal that stopped it, and the reason its record gives.

Light (no TensorFlow): the ``mnist-exp`` command and the launcher plugins import it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

# What SLURM sends before a job's time limit when submitit submits it (``--signal=USR2@signal_delay_s``).
TIME_LIMIT_SIGNAL = signal.SIGUSR2
IN_SLURM_JOB_ENV = "SLURM_JOB_ID"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # Ctrl-C, and what kill, schedulers and container runtimes send


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


HELD_SIGNALS = (*STOP_SIGNALS, TIME_LIMIT_SIGNAL)


@contextlib.contextmanager
def deferred(on_signal: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and the time-limit warning while the block runs, then deliver each that came.

    For a write to the store: an exception raised inside a database client's call can leave
    its connection in a transaction that nobody ends, and every later write of this process
    (the run's KILLED status) then waits on that lock. Each held signal goes, once the block
    is done, to the handler that was in place: a stop raises there, Keras's ``StopOnSignal``
    notes it. ``on_signal()`` runs as a signal is held (to stop waiting on the store).
    Only the main thread can set signal handlers; elsewhere the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    noted: list[int] = []

    def note(signum: int, frame: object) -> None:
        noted.append(signum)
        if on_signal is not None:
            on_signal()

    previous = {
        signum: signal.signal(signum, note)
        for signum in HELD_SIGNALS
        if signal.getsignal(signum) not in (signal.SIG_IGN, None)  # an ignored one stays ignored; None: set in C
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in noted:
            signal.raise_signal(signum)


@contextlib.contextmanager
def exit_at_once(message: str, code: int = 130) -> Iterator[None]:
    """While the block runs, Ctrl-C or SIGTERM ends the process at once: ``message`` on stderr, exit ``code``.

    For work after the record is kept (a stopped sweep's summary). An exception raised from a signal
    handler can land in a finalizer (a database connection's), where Python logs it and goes on.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def leave(signum: int, frame: object) -> None:
        logging.shutdown()
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        print(message, file=sys.stderr, flush=True)
        os._exit(code)

    previous = {
        signum: signal.signal(signum, leave)
        for signum in STOP_SIGNALS
        if signal.getsignal(signum) is not signal.SIG_IGN
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def child_processes(pid: int | None = None) -> list[int]:
    """The processes ``pid`` (default: this one) started, and theirs, from ``/proc``."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, queue = [], [pid or os.getpid()]
    while queue:
        children = parents.get(queue.pop(), [])
        found += children
        queue += children
    return found


def python_children() -> list[int]:
    """The Python processes this one started, and theirs: a launcher's workers (not a passing ``git``)."""
    found = []
    for pid in child_processes():
        with contextlib.suppress(OSError):
            if b"python" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]:
                found.append(pid)
    return found


PENDING: list[int] = []  # a stop noted in a sweep's driver, raised at the next safe point (raise_if_pending)


def raise_if_pending() -> None:
    """Raise the stop a sweep's driver noted, here, where the job's code can take it (a job's start, ``fit``)."""
    if PENDING:
        signal.alarm(0)
        raise Stopped(PENDING.pop())


class WorkerStops:
    """In a sweep's driver: Ctrl-C or SIGTERM is handed to the worker processes as SIGTERM, so each ends its run
    KILLED with its checkpoint; the driver then stops when they have (at most ``grace_s`` later). A second
    signal, or a driver with no workers (jobs in this process, or on a cluster), stops at once.

    The handler waits, holding the driver's main thread, until ``settled()`` says the workers' runs have
    ended: a launcher that learns of the first stopped job kills the other workers (joblib does, with SIGKILL).
    With no workers, the stop waits up to a second for a safe point (``raise_if_pending``): raised inside
    Hydra's or OmegaConf's setup of the next job, it left their state broken and the exit code 1.
    """

    def __init__(self, grace_s: float, settled: Callable[[], bool]) -> None:
        self.grace_s, self.settled = grace_s, settled
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in STOP_SIGNALS:
            if signal.getsignal(signum) is not signal.SIG_IGN:
                self._previous[signum] = signal.signal(signum, self._on_signal)

    def uninstall(self) -> None:
        signal.alarm(0)
        PENDING.clear()
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _on_signal(self, signum: int, frame: object) -> None:
        workers = python_children()
        if self.received is not None:
            PENDING.clear()
            raise Stopped(signum)
        self.received = signum
        if not workers:
            PENDING.append(signum)
            signal.signal(signal.SIGALRM, lambda *_: raise_if_pending())
            signal.alarm(1)
            return
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        while time.monotonic() < deadline:
            time.sleep(0.2)
            with contextlib.suppress(Exception):  # the store may be away: the grace period bounds the wait
                if self.settled():
                    break
        else:
            raise Stopped(signum)
        # The workers' jobs end as stopped, and the launcher returns; should it not, stop anyway.
        signal.signal(signal.SIGALRM, lambda *_: self._on_signal(signum, None))
        signal.alarm(max(1, round(self.grace_s)))
