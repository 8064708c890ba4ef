"""Who runs a run, whether that process still lives, and the exclusive lease that lets one process run it.

A RUNNING run carries its owner (``run.owner``: host, PID namespace, pid and the
process's start time) and a heartbeat (``run.heartbeat``, written every epoch and
every ``tracking.heartbeat_s``). A run is dead when its owner process is gone (same
host and PID namespace: asked of ``/proc``) or, seen from elsewhere, when its
heartbeat is older than ``tracking.dead_after_s``. ``end_dead_runs`` marks such runs
KILLED with the stop reason "process died", so nothing stays RUNNING forever.

``claim`` makes the calling process a run's owner and marks it RUNNING, in one
transaction of a SQL store (SQLite or PostgreSQL): of two processes resuming one run,
one gets it and the other a ``RunBusyError``. A tracking server offers no such
transaction; there the check and the write are two requests.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlflow import MlflowClient
from mlflow.entities import Run

from mnist_exp.errors import UserError
from mnist_exp.tracking.names import HEARTBEAT_TAG, OWNER_TAG, PROCESS_DIED, STOP_REASON_TAG

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)


class RunBusyError(UserError):
    """Another live process owns the run."""


def now_ms() -> int:
    return int(time.time() * 1000)


def process_started(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from ``/proc``), or None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid").removeprefix("pid:")
    except OSError:
        return "-"


@dataclass(frozen=True)
class Owner:
    """A process that runs a run: its host, PID namespace, pid and start time (which tells a reused pid apart)."""

    host: str
    namespace: str
    pid: int
    started: str

    @classmethod
    def me(cls) -> Owner:
        return cls(socket.gethostname(), pid_namespace(), os.getpid(), process_started(os.getpid()) or "-")

    @classmethod
    def parse(cls, tag: str | None) -> Owner | None:
        parts = (tag or "").split()
        if len(parts) != 4 or not parts[2].isdigit():
            return None
        return cls(parts[0], parts[1], int(parts[2]), parts[3])

    def __str__(self) -> str:
        return f"{self.host} {self.namespace} {self.pid} {self.started}"

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host}"

    def here(self) -> bool:
        """Whether this process can see the owner's: same host, same PID namespace."""
        me = Owner.me()
        return (self.host, self.namespace) == (me.host, me.namespace)


def death(tags: dict[str, str], dead_after_s: float, at_ms: int | None = None) -> str | None:
    """Why the run with these tags is dead ("process died (...)"), or None while its owner may live.

    Runs without an owner (recorded before owners were) are never judged.
    """
    owner = Owner.parse(tags.get(OWNER_TAG))
    if owner is None:
        return None
    if owner.here():
        return None if process_started(owner.pid) == owner.started else f"{PROCESS_DIED} ({owner.describe()})"
    beat = int(tags.get(HEARTBEAT_TAG, "0") or 0)
    silent_s = ((at_ms or now_ms()) - beat) / 1000
    if silent_s > dead_after_s:
        return f"{PROCESS_DIED} (no heartbeat from {owner.describe()} for {silent_s:.0f} s)"
    return None


# Transactions on a SQL store. MLflow's tables: runs (run_uuid, status, end_time), tags (key, value, run_uuid).

LOCK_ROW = "UPDATE runs SET status = status WHERE run_uuid = :run"  # takes the run's row (SQLite: the write lock)
READ = "SELECT status FROM runs WHERE run_uuid = :run"
READ_TAGS = "SELECT key, value FROM tags WHERE run_uuid = :run AND key IN (:owner, :beat)"


@functools.cache
def engine(uri: str) -> Engine | None:
    """A SQLAlchemy engine on a SQL store, one connection per transaction; None for any other store."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    if not uri.startswith(("sqlite:", "postgresql", "mysql", "mssql")):
        return None
    arguments = {"timeout": 30} if uri.startswith("sqlite:") else {}
    return create_engine(uri, poolclass=NullPool, connect_args=arguments)


def put_tags(connection: Connection, run_id: str, tags: dict[str, str]) -> None:
    from sqlalchemy import text

    for key, value in tags.items():
        connection.execute(text("DELETE FROM tags WHERE run_uuid = :run AND key = :key"), {"run": run_id, "key": key})
        connection.execute(
            text("INSERT INTO tags (key, value, run_uuid) VALUES (:key, :value, :run)"),
            {"run": run_id, "key": key, "value": value},
        )


@contextlib.contextmanager
def locked(uri: str, run_id: str) -> Iterator[tuple[Connection, str | None, dict[str, str]]]:
    """A transaction holding the run's row: the connection, its status and its owner and heartbeat tags."""
    from sqlalchemy import bindparam, text

    with engine(uri).begin() as connection:
        connection.execute(text(LOCK_ROW), {"run": run_id})
        status = connection.execute(text(READ), {"run": run_id}).scalar()
        query = text(READ_TAGS).bindparams(bindparam("owner"), bindparam("beat"))
        rows = connection.execute(query, {"run": run_id, "owner": OWNER_TAG, "beat": HEARTBEAT_TAG})
        yield connection, status, dict(rows.all())


def claim(client: MlflowClient, run_id: str, dead_after_s: float, finished_too: bool = False) -> str | None:
    """Make this process the owner of run ``run_id`` and mark it RUNNING; the earlier owner's death, if it died.

    Raises RunBusyError, naming the owner, while another live process runs it, and
    UserError for a FINISHED run unless ``finished_too``.
    """
    me = owner_tags()
    if engine(client.tracking_uri) is None:  # a tracking server: check, then write
        run = client.get_run(run_id)
        died = refuse_if_alive(run_id, run.info.status, run.data.tags, dead_after_s, finished_too)
        client.update_run(run_id, status="RUNNING")
        for key, value in me.items():
            client.set_tag(run_id, key, value)
        return died
    from sqlalchemy import text

    with locked(client.tracking_uri, run_id) as (connection, status, tags):
        died = refuse_if_alive(run_id, status, tags, dead_after_s, finished_too)
        query = "UPDATE runs SET status = 'RUNNING', end_time = NULL WHERE run_uuid = :run"
        connection.execute(text(query), {"run": run_id})
        put_tags(connection, run_id, me)
    return died


def refuse_if_alive(
    run_id: str, status: str | None, tags: dict[str, str], dead_after_s: float, finished_too: bool = False
) -> str | None:
    """None for a run that is not RUNNING; the reason a RUNNING one's owner is dead; RunBusyError if it lives."""
    if status == "FINISHED" and not finished_too:  # another process finished it a moment ago
        raise UserError(f"resume: run {run_id} already FINISHED; nothing to resume")
    if status != "RUNNING":
        return None
    if (died := death(tags, dead_after_s)) is not None:
        return died
    owner = Owner.parse(tags.get(OWNER_TAG))
    holder = owner.describe() if owner else "another process (no owner recorded)"
    raise RunBusyError(
        f"run {run_id} is being resumed by {holder}. Fix: wait for it to end, or stop that process; "
        "a process that died is noticed by its pid here, elsewhere once tracking.dead_after_s passes"
    )


def end_if_dead(client: MlflowClient, run: Run, dead_after_s: float) -> str | None:
    """End ``run`` KILLED with the reason if its owner died (atomically on a SQL store); the reason, or None."""
    if run.info.status != "RUNNING" or (died := death(run.data.tags, dead_after_s)) is None:
        return None
    last_beat = int(run.data.tags.get(HEARTBEAT_TAG, "0") or 0) or now_ms()
    if engine(client.tracking_uri) is None:
        client.set_tag(run.info.run_id, STOP_REASON_TAG, died)
        client.set_terminated(run.info.run_id, "KILLED", end_time=last_beat)
        return died
    from sqlalchemy import text

    with locked(client.tracking_uri, run.info.run_id) as (connection, status, tags):
        if status != "RUNNING" or tags.get(OWNER_TAG) != run.data.tags.get(OWNER_TAG):
            return None  # someone else ended or took it meanwhile
        query = "UPDATE runs SET status = 'KILLED', end_time = :end WHERE run_uuid = :run"
        connection.execute(text(query), {"run": run.info.run_id, "end": last_beat})
        put_tags(connection, run.info.run_id, {STOP_REASON_TAG: died})
    return died


def end_dead_runs(client: MlflowClient, dead_after_s: float, experiment_ids: list[str] | None = None) -> list[str]:
    """Mark every RUNNING run of the store (or of ``experiment_ids``) whose process died KILLED; their ids."""
    if experiment_ids is None:
        experiment_ids = [e.experiment_id for e in client.search_experiments()]
    if not experiment_ids:
        return []
    ended = []
    running = client.search_runs(experiment_ids, "attributes.status = 'RUNNING'", max_results=1000)
    for run in running:
        if (died := end_if_dead(client, run, dead_after_s)) is not None:
            log.warning("run %s (%s) was RUNNING but its %s: marked KILLED", run.info.run_id, run.info.run_name, died)
            ended.append(run.info.run_id)
    return ended


class Heartbeat:
    """Writes the run's heartbeat every ``interval_s`` seconds on a thread of its own, and whenever poked."""

    def __init__(self, client: MlflowClient, run_id: str, interval_s: float) -> None:
        self.client, self.run_id, self.interval_s = client, run_id, interval_s
        self._wake, self._done = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{run_id[:8]}", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._done.set()
        self._wake.set()
        self._thread.join(timeout=5)

    def _beat(self) -> None:
        while True:
            self._wake.wait(self.interval_s)
            self._wake.clear()
            if self._done.is_set():
                return
            try:
                self.client.set_tag(self.run_id, HEARTBEAT_TAG, str(now_ms()))
            except Exception as exc:  # the store is away; the run's own writes report it
                log.debug("heartbeat of run %s not written: %s", self.run_id, exc)


def owner_tags() -> dict[str, str]:
    """The tags that make this process a new run's owner."""
    return {OWNER_TAG: str(Owner.me()), HEARTBEAT_TAG: str(now_ms())}
