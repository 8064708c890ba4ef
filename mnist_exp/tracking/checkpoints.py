"""A run's checkpoint: written after every epoch, kept in the run's folder and the store, read to resume.

Keras's ``BackupAndRestore`` keeps a checkpoint in a local folder only and deletes it
when training ends; a run here must also carry its history (times included) and
be resumable from the store after its machine is gone, so it has its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import keras
import mlflow
from omegaconf import DictConfig

from mnist_exp.errors import ConfigError
from mnist_exp.tracking.epochs import MlflowEpochLogger
from mnist_exp.tracking.names import (
    CHECKPOINT_BEST,
    CHECKPOINT_DIR,
    CHECKPOINT_MODEL,
    CHECKPOINT_STATE,
)

log = logging.getLogger(__name__)


def run_folder(tracking_cfg: DictConfig, run_id: str) -> Path:
    """A run's local folder: its checkpoint and the journal of writes its store has not taken yet."""
    return Path(tracking_cfg.runs_dir).expanduser().resolve() / run_id


def checkpoint_folder(folder: Path) -> Path:
    return folder / CHECKPOINT_DIR


class EpochCheckpoint(keras.callbacks.Callback):
    """After every epoch, saves ``model`` with its optimizer state, the epochs done and their history.

    The history (Keras's per-epoch logs, times included) covers every epoch since the
    run began, so a resumed run draws its curves and totals from it, store or no store.
    """

    MODEL = CHECKPOINT_MODEL
    STATE = CHECKPOINT_STATE

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
        model = fingerprint(self.folder / self.MODEL)  # what a later read checks the model file against
        state.with_suffix(".tmp").write_text(json.dumps({"epochs_done": epoch + 1, "history": self.history, **model}))
        state.with_suffix(".tmp").replace(state)

    @classmethod
    def load(cls, folder: Path) -> tuple[Path | None, int, dict[str, list[float]]]:
        """The model file, epochs done and history of the checkpoint in ``folder`` (None, 0, {} if none).

        Raises DamagedCheckpointError when the state cannot be read or the model file is not the one it recorded.
        """
        state, model = folder / cls.STATE, folder / cls.MODEL
        if not state.is_file() or not model.is_file():
            return None, 0, {}
        try:
            saved = json.loads(state.read_text())
            epochs_done, history = int(saved["epochs_done"]), dict(saved.get("history", {}))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise DamagedCheckpointError(f"{state} cannot be read ({type(exc).__name__})") from exc
        recorded = {key: saved[key] for key in ("size", "sha256") if key in saved}
        if recorded and fingerprint(model) != recorded:
            raise DamagedCheckpointError(f"{model} is not the file {state.name} recorded (size or sha256 differs)")
        return model, epochs_done, history


class BestEpoch(keras.callbacks.Callback):
    """Keeps the weights of the best epoch so far by ``monitor`` (``best.weights.h5`` beside the checkpoint).

    The best of a resumed run's earlier epochs comes from its history; ``log_epoch``, if
    given, is called with every epoch (``tracking.checkpoints=every`` logs each one's model).
    """

    FILE = CHECKPOINT_BEST

    def __init__(
        self,
        folder: Path,
        model: keras.Model,
        monitor: str,
        maximize: bool,
        history: dict[str, list[float]],
        log_epoch: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__()
        self.folder, self.saved, self.monitor, self.maximize, self.log_epoch = (
            folder,
            model,
            monitor,
            maximize,
            log_epoch,
        )
        earlier = list((history or {}).get(monitor, []))
        self.best_value = (max if maximize else min)(earlier) if earlier else None
        self.best_epoch = earlier.index(self.best_value) + 1 if earlier else None

    def better(self, value: float) -> bool:
        if self.best_value is None:
            return True
        return value > self.best_value if self.maximize else value < self.best_value

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is not None and self.better(float(value)):
            partial = self.folder / f"partial.{self.FILE}"  # Keras wants the .weights.h5 ending
            self.saved.save_weights(partial)
            partial.replace(self.folder / self.FILE)
            self.best_value, self.best_epoch = float(value), epoch + 1
        if self.log_epoch is not None:
            self.log_epoch(epoch + 1)

    def restore(self, last_epoch: int) -> int:
        """Give the model the best epoch's weights (it holds ``last_epoch``'s); the epoch whose weights it now holds."""
        if self.best_epoch is None or self.best_epoch == last_epoch:
            return last_epoch
        weights = self.folder / self.FILE
        if not weights.is_file():
            log.warning(
                "the best epoch's weights (epoch %d) are gone: the run's model is epoch %d's",
                self.best_epoch,
                last_epoch,
            )
            return last_epoch
        self.saved.load_weights(weights)
        log.info("the run's model is epoch %d's, the best by %s (%.4f)", self.best_epoch, self.monitor, self.best_value)
        return self.best_epoch


class DamagedCheckpointError(Exception):
    """A checkpoint whose state cannot be read, or whose model file is not the one its state recorded."""


def fingerprint(path: Path) -> dict[str, int | str]:
    """A file's size and sha256."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return {"size": path.stat().st_size, "sha256": digest.hexdigest()}


def intact_checkpoint(
    client: mlflow.MlflowClient, run_id: str, checkpoint: Path
) -> tuple[Path | None, int, dict[str, list[float]]]:
    """The run's checkpoint: the local one, else (missing or damaged) the store's; (None, 0, {}) if neither has one.

    A damaged local copy is moved aside (``checkpoint.damaged``); with no intact copy
    anywhere, a one-line ``ConfigError`` says how to go on.
    """
    try:
        found = EpochCheckpoint.load(checkpoint)
        damage = None
    except DamagedCheckpointError as exc:
        found, damage = (None, 0, {}), exc
    if found[0] is not None:
        return found
    fetched = checkpoint.parent / "checkpoint-from-store"
    shutil.rmtree(fetched, ignore_errors=True)
    with contextlib.suppress(mlflow.exceptions.MlflowException, OSError):  # none: stopped before an epoch ended
        client.download_artifacts(run_id, CHECKPOINT_DIR, str(fetched))
    try:
        stored = EpochCheckpoint.load(fetched / CHECKPOINT_DIR)
    except DamagedCheckpointError as exc:
        damage = damage or exc
        stored = (None, 0, {})
    if damage is not None and stored[0] is None:
        raise ConfigError(
            f"resume: run {run_id}'s checkpoint is damaged ({damage}) and the store has no intact copy. "
            f"Fix: move {checkpoint} aside to train the run again from its first epoch (resume={run_id}), "
            "or start a new run"
        )
    if damage is not None:
        log.warning("run %s: the local checkpoint is damaged (%s); resuming from the store's copy", run_id, damage)
        shutil.rmtree(checkpoint.with_name("checkpoint.damaged"), ignore_errors=True)
        checkpoint.rename(checkpoint.with_name("checkpoint.damaged"))
    if stored[0] is None:
        return stored
    shutil.rmtree(checkpoint, ignore_errors=True)
    (fetched / CHECKPOINT_DIR).rename(checkpoint)
    shutil.rmtree(fetched, ignore_errors=True)
    return EpochCheckpoint.load(checkpoint)
