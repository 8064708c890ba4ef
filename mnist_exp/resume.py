"""Continue a run that was cut short: its logged config and last checkpoint."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import mlflow
from omegaconf import DictConfig

from mnist_exp import schema, tracking
from mnist_exp.callbacks import EpochCheckpoint
from mnist_exp.models import run_config

CHECKPOINT_DIR = "checkpoint"


def log_checkpoint(folder: Path) -> None:
    """Attach the last completed epoch's checkpoint to the active run (never a half-written save)."""
    for name in (EpochCheckpoint.MODEL, EpochCheckpoint.STATE):
        if (folder / name).exists():
            mlflow.log_artifact(str(folder / name), CHECKPOINT_DIR)


def resume_point(cfg: DictConfig) -> tuple[DictConfig, Path, int]:
    """The config, checkpoint file and completed epochs of the run ``cfg.resume`` names."""
    tracking.check_store(cfg.tracking.uri)
    client = mlflow.MlflowClient(cfg.tracking.uri)
    try:
        run = client.get_run(cfg.resume)
    except mlflow.exceptions.MlflowException as exc:
        raise schema.ConfigError(f"resume: no run {cfg.resume} in {cfg.tracking.uri}") from exc
    if run.info.status == "FINISHED":
        raise schema.ConfigError(f"resume: run {cfg.resume} already FINISHED; nothing to resume")
    try:
        folder = Path(client.download_artifacts(run.info.run_id, CHECKPOINT_DIR, tempfile.mkdtemp()))
    except (mlflow.exceptions.MlflowException, OSError) as exc:
        raise schema.ConfigError(f"resume: run {cfg.resume} logged no checkpoint (it ended before an epoch)") from exc
    state = json.loads((folder / EpochCheckpoint.STATE).read_text())
    original = run_config(client, run)
    original.resume = cfg.resume
    return original, folder / EpochCheckpoint.MODEL, int(state["epochs_done"])


def full_history(run_id: str) -> dict[str, list[float]]:
    """A resumed run's whole per-epoch history, from MLflow, in Keras's key names."""
    client = mlflow.MlflowClient()
    history = {}
    for key in ("accuracy", "loss", "val_accuracy", "val_loss"):
        points = sorted(
            client.get_metric_history(run_id, key if key.startswith("val_") else f"train_{key}"), key=lambda m: m.step
        )
        if points:
            history[key] = [m.value for m in points]
    return history
