"""Continue a run that was cut short: its logged config, its last checkpoint, what its store missed."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

import mlflow
from omegaconf import DictConfig, OmegaConf

from mnist_exp import schema, tracking
from mnist_exp.callbacks import EpochCheckpoint
from mnist_exp.models import CONFIG_FILE, run_config
from mnist_exp.tracking.record import RUN_INFO, STAGED, open_folder

log = logging.getLogger(__name__)
CHECKPOINT_DIR = "checkpoint"


def run_folder(tracking_cfg: DictConfig, run_id: str) -> Path:
    """A run's local folder: its checkpoint and the journal of writes its store has not taken yet."""
    return Path(tracking_cfg.runs_dir).expanduser().resolve() / run_id


def checkpoint_folder(folder: Path) -> Path:
    return folder / CHECKPOINT_DIR


@dataclass(frozen=True)
class ResumePoint:
    """Where a run continues: its config, its checkpoint (None: from the start), epochs done and their history."""

    cfg: DictConfig
    model_file: Path | None
    epochs_done: int
    history: dict[str, list[float]]


def logged_config(client: mlflow.MlflowClient, run: mlflow.entities.Run, folder: Path) -> DictConfig:
    """The resolved config a run logged, from its local folder if it is there, else from the store."""
    local = folder / STAGED / CONFIG_FILE
    return OmegaConf.load(local) if local.is_file() else run_config(client, run)


def resume_point(cfg: DictConfig) -> ResumePoint:
    """The config, checkpoint and completed epochs of the run ``cfg.resume`` names.

    Writes the run's journal holds are pushed first. The checkpoint comes from the
    run's local folder, else from the store; a run stopped before its first epoch
    ended starts again from the beginning, in the same run.
    """
    uri = cfg.tracking.uri
    client = tracking.open_store(uri)
    try:
        run = client.get_run(cfg.resume)
    except mlflow.exceptions.MlflowException as exc:
        raise schema.ConfigError(f"resume: no run {cfg.resume} in {uri}. Fix: check the run id and the store") from exc
    folder = run_folder(cfg.tracking, run.info.run_id)
    if (folder / RUN_INFO).is_file() and open_folder(folder, client).flush():
        run = client.get_run(cfg.resume)
    if run.info.status == "FINISHED":
        raise schema.ConfigError(f"resume: run {cfg.resume} already FINISHED; nothing to resume")
    try:
        original = logged_config(client, run, folder)
    except (mlflow.exceptions.MlflowException, OSError) as exc:
        raise schema.ConfigError(f"resume: run {cfg.resume} logged no {CONFIG_FILE}; it cannot be resumed") from exc
    original.resume = cfg.resume
    checkpoint = checkpoint_folder(run_folder(original.tracking, run.info.run_id))
    if EpochCheckpoint.load(checkpoint)[0] is None:
        with contextlib.suppress(mlflow.exceptions.MlflowException, OSError):  # none: stopped before an epoch ended
            client.download_artifacts(run.info.run_id, CHECKPOINT_DIR, str(checkpoint.parent))
    model_file, epochs_done, history = EpochCheckpoint.load(checkpoint)
    if model_file is None:
        log.info(
            "run %s has no checkpoint (stopped before its first epoch ended): training from the start", run.info.run_id
        )
    return ResumePoint(original, model_file, epochs_done, history)
