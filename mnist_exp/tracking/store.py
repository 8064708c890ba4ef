"""The MLflow store: its URI, checks that fail fast with a fix, the creation lock, the client and the experiment."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Run
from omegaconf import DictConfig

from mnist_exp.errors import UserError
from mnist_exp.tracking import views
from mnist_exp.tracking.names import EXPERIMENT_KIND_TAG, TRACKING_URI_ENV

SQLITE_PREFIX = "sqlite:///"
log = logging.getLogger(__name__)
# MLflow logs every database error it re-raises with its traceback; mnist-exp reports each in one line.
logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)


class TrackingError(UserError):
    """The tracking store cannot be reached, opened or written; the message names its URI and the fix."""


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, or None for any other store."""
    return Path(uri.removeprefix(SQLITE_PREFIX).split("?")[0]) if uri.startswith(SQLITE_PREFIX) else None


def damaged_store_error(uri: str) -> TrackingError:
    """A SQLite store whose file is damaged, with how to recover what it holds."""
    database = sqlite_path(uri)
    return TrackingError(
        f"tracking store {uri}: the file is damaged (not a readable SQLite database). Fix: recover what it holds "
        f"with sqlite3 {database} .recover | sqlite3 {database}.recovered, then move {database} aside and put "
        f"{database}.recovered in its place (or restore a backup); then mnist-exp-sync pushes what runs "
        "journaled meanwhile"
    )


def store_error(uri: str, exc: BaseException) -> TrackingError:
    """What went wrong with the store at ``uri``, in words, with the fix."""
    text = f"{exc}".lower()
    database = sqlite_path(uri)
    if "database is locked" in text or "database table is locked" in text:
        why = "it is locked by another process"
        fix = f"wait for the process writing it to finish (`fuser {database}` names it), or use another store"
    elif any(words in text for words in DAMAGE):
        return damaged_store_error(uri)
    elif "disk is full" in text or "no space left" in text:
        why = "the disk is full"
        fix = "free space on the disk that holds it, or point tracking.store_dir elsewhere"
    elif "readonly" in text or "read-only" in text or "permission denied" in text:
        why = "it cannot be written"
        fix = "fix its permissions, or point tracking.store_dir elsewhere"
    elif "_alembic_tmp_" in text or "duplicate column" in text or "already exists" in text:
        why = "its schema was left half-migrated by an interrupted upgrade"
        fix = f"move {database or 'the database'} aside and start a new store"
    else:
        why = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else 'no answer'}"
        fix = "start the server or database, or point tracking.uri / MLFLOW_TRACKING_URI at one that runs"
    return TrackingError(f"tracking store {uri}: {why}. Fix: {fix}")


DAMAGE = ("malformed", "not a database")  # what SQLite says of a damaged file
OPENED: list[str] = []  # the stores this process opened, newest last: what an error deep in MLflow was about


def is_damage(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an error in its chain) is SQLite saying its file is damaged."""
    while exc is not None:
        if any(words in str(exc).lower() for words in DAMAGE):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def explain(exc: BaseException) -> TrackingError | None:
    """A damaged store's error as one line with the recovery, for whichever store this process opened last."""
    if not is_damage(exc) or not OPENED:
        return None
    return damaged_store_error(OPENED[-1])


def check_intact(uri: str) -> None:
    """A SQLite store must pass SQLite's own check of every page (``PRAGMA quick_check``), for a long-lived reader."""
    import sqlite3

    database = sqlite_path(uri)
    if database is None or not database.is_file():
        return
    try:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)) as connection:
            verdict = connection.execute("PRAGMA quick_check(1)").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise store_error(uri, exc) from exc
    if verdict != "ok":
        raise damaged_store_error(uri)


def check_database_server(uri: str, timeout: float) -> None:
    """A PostgreSQL/MySQL store's server must accept a connection within ``timeout`` seconds."""
    from sqlalchemy.engine import make_url

    url = make_url(uri)
    port = url.port or {"postgresql": 5432, "mysql": 3306}.get(url.get_backend_name(), 5432)
    try:
        socket.create_connection((url.host or "127.0.0.1", port), timeout=timeout).close()
    except OSError as exc:
        raise TrackingError(
            f"tracking store {url.render_as_string(hide_password=True)}: its database server does not answer "
            f"on {url.host}:{port} within {timeout:.0f} s ({exc}). Fix: start the database, or point "
            "tracking.uri / MLFLOW_TRACKING_URI at one that runs"
        ) from exc


def check_store(uri: str, timeout: float = 10.0) -> None:
    """Fail fast, with the URI and the fix, when a server does not answer or a local store cannot be written."""
    if uri.startswith(("http://", "https://")):
        import requests

        try:
            requests.get(f"{uri.rstrip('/')}/health", timeout=timeout).raise_for_status()
        except requests.RequestException as exc:
            raise TrackingError(
                f"tracking store {uri} cannot be reached ({type(exc).__name__}). Fix: start the server, "
                "or point tracking.uri / MLFLOW_TRACKING_URI at one that runs"
            ) from exc
    elif uri.startswith(("postgresql", "mysql")):
        check_database_server(uri, timeout)
    elif (database := sqlite_path(uri)) is not None:
        try:
            database.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TrackingError(f"tracking store {uri} cannot be created: {exc}") from exc
        writable = os.access(database.parent, os.W_OK) and (not database.exists() or os.access(database, os.W_OK))
        if not writable:
            raise TrackingError(
                f"tracking store {uri} is not writable. Fix: fix the permissions or set tracking.store_dir"
            )
        if database.is_file():
            check_sqlite_writable(uri, database, timeout)


def check_sqlite_writable(uri: str, database: Path, timeout: float) -> None:
    """The SQLite store must be a database that takes a write within ``timeout`` seconds.

    ``BEGIN IMMEDIATE`` waits only for another writer (readers do not block it);
    a damaged file fails on the schema read.
    """
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(database, timeout=timeout, isolation_level=None)) as connection:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("PRAGMA schema_version").fetchone()
            connection.execute("ROLLBACK")
    except sqlite3.Error as exc:
        raise store_error(uri, exc) from exc


def bound_requests(tracking_cfg: DictConfig) -> None:
    """Bound each HTTP call MLflow makes: a time-out per request and few retries of its own.

    MLflow's defaults (120 s time-out, 7 retries with doubling back-off) kept a process
    busy for minutes after its server went away; ``RunRecord`` retries within its own bound.
    """
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(int(tracking_cfg.request_timeout_s))
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "1"
    os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = "1"


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Hold an inter-process lock beside a SQLite store (``<file>.lock``); nothing for other stores.

    MLflow creates and migrates a store on first use; processes doing that at the same
    moment fail or leave a half-migrated schema, so whoever comes first does it alone.
    """
    database = sqlite_path(uri)
    if database is None:
        yield
        return
    with open(database.with_name(database.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def leftover_migration_tables(database: Path) -> list[str]:
    """Tables an interrupted schema upgrade left behind in a SQLite store."""
    import sqlite3

    if not database.is_file() or database.stat().st_size == 0:
        return []
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE name LIKE '\\_alembic\\_tmp\\_%' ESCAPE '\\'")
        return [name for (name,) in rows]


def repair_half_migrated(database: Path) -> None:
    """Drop the temporary tables of an interrupted upgrade, so the upgrade can run again."""
    import sqlite3

    leftovers = leftover_migration_tables(database)
    if not leftovers:
        return
    log.warning("store %s: dropping %s left by an interrupted upgrade", database, ", ".join(leftovers))
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as connection:
        for name in leftovers:
            connection.execute(f'DROP TABLE "{name}"')
        connection.commit()


def open_store(uri: str, timeout: float = 10.0) -> MlflowClient:
    """A client on the store at ``uri``, created and migrated once whoever opens it first.

    Raises TrackingError naming the store and the fix when it cannot be opened
    (a server or database that does not answer, a SQLite file locked, for ``timeout`` seconds).
    """
    check_store(uri, timeout)
    OPENED.append(uri)
    try:
        with store_lock(uri):
            if (database := sqlite_path(uri)) is not None:
                repair_half_migrated(database)
            return MlflowClient(uri)  # builds the store: creates and migrates its schema
    except TrackingError:
        raise
    except Exception as exc:  # SQLAlchemy, sqlite3 and MLflow each raise their own types
        raise store_error(uri, exc) from exc


def open_existing_store(uri: str) -> MlflowClient:
    """A client on the store at ``uri``, which must exist: a command that only reads never creates one."""
    database = sqlite_path(uri)
    if database is not None and not database.is_file():
        raise TrackingError(
            f"tracking store {uri}: there is no store there ({database} does not exist). "
            "Fix: pass --tracking-uri, or set MLFLOW_TRACKING_URI, to the store the runs are in"
        )
    return open_store(uri)


def existing_run(client: MlflowClient, run_id: str) -> Run:
    """The run ``run_id``; a UserError if the store has none (other failures, a damaged store's, pass on)."""
    try:
        return client.get_run(run_id)
    except mlflow.exceptions.MlflowException as exc:
        if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise
        check_intact(client.tracking_uri)  # a damaged table reads as empty: say so rather than "no run"
        raise UserError(f"no run {run_id} in {client.tracking_uri}. Fix: check the run id and --tracking-uri") from exc


def use_store(uri: str) -> None:
    """Point MLflow's fluent API at ``uri`` in this process only.

    ``mlflow.set_tracking_uri`` also sets MLFLOW_TRACKING_URI, which the config reads
    first: a second run in the same process, or a child process, would then ignore
    its own ``tracking.store_dir``. The variable is put back as it was.
    """
    before = os.environ.get(TRACKING_URI_ENV)
    mlflow.set_tracking_uri(uri)
    if before is None:
        os.environ.pop(TRACKING_URI_ENV, None)
    else:
        os.environ[TRACKING_URI_ENV] = before


def connect(tracking_cfg: DictConfig, patient: bool = False) -> MlflowClient:
    """A client on the configured store, created if needed, with MLflow's fluent API pointed there too.

    A store that does not answer is an error after ``request_timeout_s`` (a user waits),
    or with ``patient`` (a sweep's job: nobody waits) after ``retry_s``.
    """
    uri = tracking_cfg.uri
    bound_requests(tracking_cfg)
    client = open_store(uri, tracking_cfg.retry_s if patient else tracking_cfg.request_timeout_s)
    use_store(uri)
    return client


def experiment_id(client: MlflowClient, tracking_cfg: DictConfig, objective: DictConfig) -> str:
    """The id of the configured experiment, created if needed.

    In a local SQLite store a new experiment keeps its artifacts at ``artifact_location``;
    a server decides for itself. A new experiment gets the UI's saved view of its runs,
    sorted by ``objective`` (``views``).
    """
    uri = tracking_cfg.uri
    try:
        with store_lock(uri):
            experiment = client.get_experiment_by_name(tracking_cfg.experiment_name)
            if experiment is not None:
                return experiment.experiment_id
            local = sqlite_path(uri) is not None
            location = Path(tracking_cfg.artifact_location).resolve().as_uri() if local else None
            # Tell the MLflow UI these are model-training runs, so it opens on the runs table.
            tags = {EXPERIMENT_KIND_TAG: "custom_model_development"} | views.experiment_tags(objective)
            try:
                return client.create_experiment(tracking_cfg.experiment_name, artifact_location=location, tags=tags)
            except mlflow.exceptions.MlflowException as exc:  # another process (on a server) made it first
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                return client.get_experiment_by_name(tracking_cfg.experiment_name).experiment_id
    except (mlflow.exceptions.MlflowException, OSError) as exc:
        raise store_error(uri, exc) from exc


def open_client(uri: str) -> MlflowClient:
    """A client on the existing store at ``uri`` (never one made anew), MLflow's fluent API pointed there too."""
    client = open_existing_store(uri)
    use_store(uri)
    return client
