"""One run's record in the store: every write retried within a bound, then journaled until the store answers.

A run writes its params, metrics, tags, artifacts, model and final status through
``RunRecord``. A write the store does not take (a SQLite lock, a server that is
down) is retried with growing pauses for up to ``retry_s`` seconds; after that, or
at once when the run is stopping, it goes to a journal in the run's local folder
(``journal.jsonl``, with copies of its files), and later writes queue behind it.
The journal is replayed, in order, whenever the store answers again: at the next
write, when the run ends, or by ``mnist-exp-sync`` and ``resume``.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from mnist_exp.stops import deferred
from mnist_exp.tracking.liveness import Heartbeat
from mnist_exp.tracking.names import CHECKPOINT_MODEL as MODEL_FILE
from mnist_exp.tracking.names import JOURNAL, MODEL_EPOCH_TAG, MODEL_NAME, RUN_INFO, RUN_MODEL_TAG, STAGED
from mnist_exp.tracking.store import is_damage, store_error, use_store
from mnist_exp.tracking.system_metrics import SystemMetrics

log = logging.getLogger(__name__)
T = TypeVar("T")

# Errors that no retry will mend: a wrong value or a run that does not exist.
PERMANENT = frozenset({"INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST", "BAD_REQUEST"})


def artifact_dir(artifact_file: str) -> str:
    """The folder part of an artifact's path: ``plots`` for ``plots/x.png``, empty for ``x.txt``."""
    parent = Path(artifact_file).parent.as_posix()
    return "" if parent == "." else parent


def dataset_input(fields: dict[str, str]) -> DatasetInput:
    """An MLflow dataset input from its journaled fields (``context``: training, validation or test)."""
    dataset = {k: v for k, v in fields.items() if k != "context"}
    return DatasetInput(Dataset(**dataset), tags=[InputTag(MLFLOW_DATASET_CONTEXT, fields["context"])])


class StoreAwayError(Exception):
    """The store did not take a write within the retry bound."""


# A store that answers this will not take a write by waiting: journal at once.
HOPELESS = ("database or disk is full", "readonly database", "disk i/o error", "no space left")


def first_line(exc: BaseException) -> str:
    """The gist of an error: the first line that is not SQLAlchemy's note on where it was raised, cut at 300."""
    lines = [line for line in str(exc).strip().splitlines() if line and not line.startswith("(raised as a result")]
    return (lines[0] if lines else type(exc).__name__)[:300]


def is_hopeless(exc: BaseException) -> bool:
    return any(words in str(exc).lower() for words in HOPELESS)


def is_permanent(exc: BaseException) -> bool:
    """An error no retry mends: anything but a store's or a connection's failure, or a wrong value."""
    from sqlalchemy.exc import DBAPIError

    if isinstance(exc, MlflowException):
        return exc.error_code in PERMANENT
    return not isinstance(exc, OSError | DBAPIError)


def retrying(call: Callable[[], T], retry_s: float, stopping: threading.Event, what: str) -> T:
    """``call()``, retried with pauses of 0.5, 1, 2 ... 8 s for up to ``retry_s`` seconds.

    Raises StoreAwayError once the bound has passed or ``stopping`` is set; errors that
    no retry mends are raised as they are.
    """
    deadline, pause, warned = time.monotonic() + retry_s, 0.5, False
    while True:
        try:
            return call()
        except Exception as exc:
            if is_permanent(exc):
                raise
            left = deadline - time.monotonic()
            if left <= 0 or stopping.is_set() or is_hopeless(exc) or is_damage(exc):
                raise StoreAwayError(f"{type(exc).__name__}: {first_line(exc)}") from exc
            if not warned:
                log.warning("the store did not take %s (%s); retrying for up to %.0f s", what, first_line(exc), left)
                warned = True
            stopping.wait(min(pause, left))
            pause = min(pause * 2, 8.0)


class RunRecord:
    """Writes one run's record to the store through a journal that survives the store's absence."""

    def __init__(
        self,
        client: MlflowClient,
        run_id: str,
        folder: Path,
        retry_s: float,
        heartbeat_s: float | None = None,
        system_metrics_s: float | None = None,
    ) -> None:
        self.client, self.run_id, self.folder, self.retry_s = client, run_id, folder, retry_s
        self.stopping = threading.Event()  # set when the run stops: no more waiting on the store
        self._lock = threading.RLock()
        # a running run's proof of life, every heartbeat_s and at every metric write (see liveness)
        self.heartbeat = Heartbeat(client, run_id, heartbeat_s) if heartbeat_s else None
        # CPU, memory, disk, network and GPU use while the run lives, every system_metrics_s
        self.system = SystemMetrics(client.tracking_uri, run_id, system_metrics_s) if system_metrics_s else None
        folder.mkdir(parents=True, exist_ok=True)
        info = {"run_id": run_id, "tracking_uri": client.tracking_uri}
        (folder / RUN_INFO).write_text(json.dumps(info, indent=2) + "\n")

    # What a run writes.

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        if self.heartbeat is not None:
            self.heartbeat.poke()
        stamp = int(time.time() * 1000)
        self._write({"op": "batch", "metrics": [[key, float(v), stamp, step] for key, v in metrics.items()]})

    def logged_steps(self, metric: str, if_unreadable: set[int]) -> set[int]:
        """The steps of ``metric`` the run has logged: in the store, or waiting in the journal.

        Where the store cannot be read, ``if_unreadable`` stands for what it holds.
        """
        waiting = {step for entry in self.pending() for key, _, _, step in entry.get("metrics", []) if key == metric}
        try:
            with deferred(on_signal=self.stopping.set):  # a read interrupted can hold the database too
                stored = {m.step for m in self.client.get_metric_history(self.run_id, metric)}
        except Exception:  # the store is away
            stored = set(if_unreadable)
        return stored | waiting

    def log_params(self, params: dict[str, Any]) -> None:
        items = [[key, str(value)] for key, value in params.items()]
        for start in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            self._write({"op": "batch", "params": items[start : start + 100]})

    def set_tags(self, tags: dict[str, str]) -> None:
        self._write({"op": "batch", "tags": [[key, str(value)] for key, value in tags.items()]})

    def log_file(self, source: Path, artifact_path: str) -> None:
        """Upload a copy of ``source`` as ``<artifact_path>/<name>`` (the copy outlives later changes to it)."""
        staged = self.folder / STAGED / artifact_path / source.name
        staged.parent.mkdir(parents=True, exist_ok=True)
        if source.resolve() != staged.resolve():
            shutil.copyfile(source, staged)
        self._write({"op": "artifact", "path": str(staged), "artifact_path": artifact_path})

    def log_text(self, text: str, artifact_file: str) -> None:
        self._staged(artifact_file).write_text(text)
        self.log_file(self._staged(artifact_file), artifact_dir(artifact_file))

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        figure.savefig(self._staged(artifact_file))
        self.log_file(self._staged(artifact_file), artifact_dir(artifact_file))

    def log_inputs(self, datasets: list[dict[str, str]]) -> None:
        """Log datasets as the run's inputs: each an MLflow dataset entity's fields and its ``context``."""
        self._write({"op": "inputs", "datasets": datasets})

    def log_model(self, model: Any, signature: dict, requirements: list[str], epoch: int) -> None:
        """Log a Keras model, the weights of ``epoch``, as a LoggedModel of the run at that step; saved as a
        ``.keras`` file while the store is away."""
        path = self._staged(f"epoch{epoch}-{MODEL_FILE}")
        entry = {"op": "model", "path": str(path), "signature": signature, "requirements": requirements}
        entry |= {"epoch": epoch}
        self._write(entry, apply=lambda: self._log_model(entry, model), keep=lambda: model.save(path))

    def log_run_model(self, epoch: int, metrics: dict[str, float]) -> None:
        """Mark the model logged for ``epoch`` as the run's model, and log ``metrics`` (the run's final ones) linked
        to it: the run's metrics, which the model's page shows too."""
        self._write({"op": "run_model", "epoch": epoch, "metrics": metrics, "time": int(time.time() * 1000)})

    def _staged(self, artifact_file: str) -> Path:
        path = self.folder / STAGED / artifact_file
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def stop_watching(self) -> None:
        """Stop the run's heartbeat and system metrics: the process is done with it."""
        for companion in (self.heartbeat, self.system):
            if companion is not None:
                companion.stop()

    def terminate(self, status: str) -> None:
        self.stop_watching()
        self._write({"op": "terminate", "status": status, "end_time": int(time.time() * 1000)})

    # The journal.

    @property
    def journal(self) -> Path:
        return self.folder / JOURNAL

    def pending(self) -> list[dict]:
        """The journaled writes the store has not taken yet, oldest first."""
        if not self.journal.is_file():
            return []
        return [json.loads(line) for line in self.journal.read_text().splitlines() if line.strip()]

    def flush(self, retry_s: float = 0.0) -> bool:
        """Replay the journal into the store, in order; True when nothing is left in it."""
        with self._lock, deferred(on_signal=self.stopping.set):
            entries = self.pending()
            while entries:
                try:
                    retrying(lambda: self._apply(entries[0]), retry_s, self.stopping, "the journal")
                except StoreAwayError:
                    return False
                entries.pop(0)
                self._rewrite(entries)
            return True

    def close(self) -> bool:
        """Push what is journaled; remove the folder once the record is whole. True when it is."""
        self.stop_watching()
        whole = self.flush(0 if self.stopping.is_set() else self.retry_s)
        if not whole:
            log.warning(
                "run %s: the store %s did not take %d writes; they are kept in %s. "
                "Push them when it answers again: mnist-exp-sync %s",
                self.run_id,
                self.client.tracking_uri,
                len(self.pending()),
                self.journal,
                self.folder,
            )
        return whole

    def _write(
        self, entry: dict, apply: Callable[[], None] | None = None, keep: Callable[[], None] | None = None
    ) -> None:
        """Apply ``entry`` (or ``apply()``) within the retry bound, else journal it (after ``keep()``).

        A stop that comes meanwhile waits until the write is in the store or the journal (``deferred``),
        and ends the retries at once.
        """
        with self._lock, deferred(on_signal=self.stopping.set):
            if not self.flush():  # queue behind what is already waiting
                self._append(entry, keep)
                return
            try:
                retrying(apply or (lambda: self._apply(entry)), self.retry_s, self.stopping, entry["op"])
            except StoreAwayError as exc:
                if is_damage(exc):  # kept for after the repair, and the run stops: the store takes nothing more
                    self._append(entry, keep)
                    raise store_error(self.client.tracking_uri, exc.__cause__ or exc) from exc
                if not self.journal.is_file():
                    log.warning("run %s: journaling writes from now on (%s)", self.run_id, exc)
                self._append(entry, keep)
            except BaseException as exc:  # the process exits meanwhile (signals wait): keep the write, then go
                if not is_permanent(exc):
                    self._append(entry, keep)
                raise

    def _append(self, entry: dict, keep: Callable[[], None] | None = None) -> None:
        if keep is not None:
            keep()
        with self.journal.open("a") as journal:
            journal.write(json.dumps(entry) + "\n")

    def _rewrite(self, entries: list[dict]) -> None:
        partial = self.journal.with_suffix(".tmp")
        partial.write_text("".join(json.dumps(e) + "\n" for e in entries))
        partial.replace(self.journal)

    def _apply(self, entry: dict) -> None:
        op = entry["op"]
        if op == "batch":
            self.client.log_batch(
                self.run_id,
                metrics=[Metric(k, v, stamp, step) for k, v, stamp, step in entry.get("metrics", [])],
                params=[Param(k, v) for k, v in entry.get("params", [])],
                tags=[RunTag(k, v) for k, v in entry.get("tags", [])],
            )
        elif op == "artifact":
            self.client.log_artifact(self.run_id, entry["path"], entry["artifact_path"] or None)
        elif op == "model":
            import keras

            self._log_model(entry, keras.models.load_model(entry["path"]))
        elif op == "inputs":
            datasets = [dataset_input(d) for d in entry["datasets"]]
            try:
                self.client.log_inputs(self.run_id, datasets=datasets)
            except MlflowException as exc:  # a parallel job added the same dataset at that moment: it exists now
                if "unique" not in str(exc).lower():
                    raise
                self.client.log_inputs(self.run_id, datasets=datasets)
        elif op == "run_model":
            model_id = self._model_of_epoch(entry["epoch"])
            self.client.set_logged_model_tags(model_id, {RUN_MODEL_TAG: "true"})
            metrics = [Metric(k, v, entry["time"], 0, model_id=model_id) for k, v in entry["metrics"].items()]
            self.client.log_batch(self.run_id, metrics=metrics)
        elif op == "terminate":
            self.client.set_terminated(self.run_id, entry["status"], end_time=entry["end_time"])
        else:
            raise ValueError(f"unknown journal entry {op!r} in {self.journal}")

    def _log_model(self, entry: dict, model: Any) -> None:
        import mlflow
        import mlflow.keras
        from mlflow.models import Model, ModelSignature

        use_store(self.client.tracking_uri)  # Model.log writes through the fluent API's store
        epoch = entry.get("epoch", 0)  # a journal written before models had epochs: the run's last
        logged = mlflow.initialize_logged_model(  # in the run's experiment, whatever experiment is active
            name=MODEL_NAME,
            source_run_id=self.run_id,
            experiment_id=self.client.get_run(self.run_id).info.experiment_id,
            tags={MODEL_EPOCH_TAG: str(epoch)},
        )
        Model.log(
            artifact_path=None,
            name=MODEL_NAME,
            flavor=mlflow.keras,
            run_id=self.run_id,
            model_id=logged.model_id,
            model=model,
            step=epoch,
            signature=ModelSignature.from_dict(entry["signature"]),
            pip_requirements=entry["requirements"],
        )

    def _model_of_epoch(self, epoch: int) -> str:
        """The id of the newest model this run logged for ``epoch``."""
        experiment_id = self.client.get_run(self.run_id).info.experiment_id
        found = self.client.search_logged_models(
            [experiment_id],
            filter_string=f"source_run_id = '{self.run_id}' AND tags.`{MODEL_EPOCH_TAG}` = '{epoch}'",
            order_by=[{"field_name": "creation_time", "ascending": False}],
            max_results=1,
        )
        if not found:
            raise ValueError(f"run {self.run_id} logged no model for epoch {epoch}")
        return found[0].model_id


def open_folder(folder: Path, client: MlflowClient | None = None, retry_s: float = 0.0) -> RunRecord:
    """The RunRecord of a run folder written earlier (its run id and store from ``run.json``)."""
    info = json.loads((folder / RUN_INFO).read_text())
    return RunRecord(client or MlflowClient(info["tracking_uri"]), info["run_id"], folder, retry_s)
