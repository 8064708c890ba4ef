"""``train(cfg)``: one experiment from a composed config to a finished MLflow run."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Event

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import mlflow
import numpy as np
import tensorflow as tf
from mlflow import MlflowClient
from mlflow.models import ModelSignature
from mlflow.tracking.context.registry import resolve_tags
from mlflow.types import Schema, TensorSpec
from omegaconf import DictConfig, OmegaConf

from mnist_exp import parallel, plots, resume, schema, sweep, tracking
from mnist_exp.callbacks import (
    EPOCH_TIME,
    TRAIN_TIME,
    EpochCheckpoint,
    MlflowEpochLogger,
    StopOnDivergence,
    StopOnSignal,
)
from mnist_exp.config import group_options
from mnist_exp.data import DatasetFiles, load
from mnist_exp.model import compile_model
from mnist_exp.models import CONFIG_FILE
from mnist_exp.pipeline import EpochOrder, Partition, batches, partition
from mnist_exp.plan import plan as choose_plan
from mnist_exp.plan import this_machine
from mnist_exp.tracking.record import RunRecord, StoreAwayError, retrying

log = logging.getLogger(__name__)
CONFIG_HASH_TAG = "config.hash"
MLFLOW_PARENT_RUN_ID = "mlflow.parentRunId"
PRECISION_PARAM = "precision"  # the dtype policy the run computed in (training.precision may say auto)
PRECISION_REASON_TAG = "precision.reason"
MACHINE_TAG = "machine"


def progress_mode(verbose: str | int) -> int:
    """Keras verbosity: for ``auto``, a live bar on a terminal and one line per epoch otherwise."""
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    return int(verbose)


def model_summary(model: keras.Model) -> str:
    lines: list[str] = []
    model.summary(print_fn=lambda line, **_: lines.append(line))
    return "\n".join(lines)


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """Test loss and accuracy of the predicted class probabilities."""
    one_hot = keras.ops.one_hot(labels, probabilities.shape[1])
    loss = keras.losses.categorical_crossentropy(one_hot, probabilities)
    accuracy = np.mean(probabilities.argmax(axis=1) == labels)
    return {"test_loss": float(np.mean(loss)), "test_accuracy": float(accuracy)}


def signature(dataset_cfg: DictConfig) -> ModelSignature:
    """What the logged model takes and returns: float32 images in [0, 1], and class probabilities."""
    images = TensorSpec(np.dtype(np.float32), (-1, *dataset_cfg.image_shape))
    probabilities = TensorSpec(np.dtype(np.float32), (-1, dataset_cfg.num_classes))
    return ModelSignature(inputs=Schema([images]), outputs=Schema([probabilities]))


def log_training_artifacts(cfg: DictConfig, record: RunRecord, model: keras.Model, history: dict) -> None:
    """Learning curves, model summary and the model itself."""
    record.log_figure(plots.learning_curves(history), "plots/learning_curves.png")
    record.log_text(model_summary(model), "model_summary.txt")
    if cfg.tracking.log_model:
        record.log_model(model, signature(cfg.dataset).to_dict(), tracking.model_requirements())


def predict_while(log: Callable[[], None], model: keras.Model, images: tf.data.Dataset) -> np.ndarray:
    """The model's class probabilities for ``images``, predicted on a worker thread while ``log`` runs here.

    Prediction runs in TensorFlow, mostly without the GIL, so the logging no longer waits for it.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-prediction") as worker:
        predicted = worker.submit(model.predict, images, verbose=0)
        log()
        return predicted.result()


def finished_twin(experiment_id: str, digest: str) -> mlflow.entities.Run | None:
    """A FINISHED run of the experiment whose config hashes to ``digest``."""
    runs = mlflow.search_runs(
        [experiment_id],
        f"tags.`{CONFIG_HASH_TAG}` = '{digest}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    return runs[0] if runs else None


@contextlib.contextmanager
def recorded_stop(record: RunRecord, checkpoint: Path) -> Iterator[None]:
    """Whatever stops the run early leaves it with its metrics so far and its last checkpoint.

    Ctrl-C or SIGTERM ends the run KILLED, at once (the store gets one try per write,
    the rest waits in the journal); an error leaves it FAILED with the error as tags.
    """
    try:
        yield
    except BaseException as exc:
        stopped = isinstance(exc, KeyboardInterrupt)
        if stopped:
            record.stopping.set()
        for name in (EpochCheckpoint.MODEL, EpochCheckpoint.STATE):
            if (checkpoint / name).exists():
                record.log_file(checkpoint / name, resume.CHECKPOINT_DIR)
        if stopped:
            log.warning("interrupted: run %s ends KILLED; continue it with resume=%s", record.run_id, record.run_id)
        else:
            record.set_tags(sweep.error_tags(exc))
            record.log_text(traceback.format_exc(), "error.txt")
        record.terminate("KILLED" if stopped else "FAILED")
        record.close()
        raise


def summary_metrics(history: dict[str, list[float]], train_samples: int) -> dict[str, float]:
    """Totals over every epoch of the run (a resumed one's included): time, throughput, best validation accuracy."""
    metrics = {
        "train_time_s": float(sum(history[EPOCH_TIME])),
        "epoch_time_s_mean": float(np.mean(history[EPOCH_TIME])),
        "train_samples_per_s_mean": train_samples * len(history[TRAIN_TIME]) / sum(history[TRAIN_TIME]),
    }
    if "val_accuracy" in history:
        metrics["best_val_accuracy"] = float(max(history["val_accuracy"]))
    return metrics


def fit_and_log(
    cfg: DictConfig,
    model: keras.Model,
    trainer: keras.Model,
    data: Partition,
    record: RunRecord,
    start: resume.ResumePoint | None,
) -> dict[str, float]:
    """Train from where ``start`` left off to the configured epochs, evaluate, and log metrics and artifacts.

    ``trainer`` fits and predicts (``model``, or ``model`` in batch shards);
    ``model`` is what is checkpointed and logged.
    """
    classes, eval_batch_size = cfg.dataset.num_classes, cfg.training.eval_batch_size
    epochs_done = start.epochs_done if start else 0
    order = EpochOrder(cfg.training.seed, len(data.train))
    train_data = batches(data.train, classes, cfg.training.batch_size, order if cfg.training.shuffle else None)
    val_data = batches(data.val, classes, eval_batch_size) if len(data.val) else None
    epoch_logger = MlflowEpochLogger(record, len(data.train))
    checkpoint = EpochCheckpoint(
        resume.checkpoint_folder(record.folder), model, epoch_logger, start.history if start else {}
    )
    if epochs_done < cfg.training.epochs:
        try:
            with StopOnSignal() as stop_on_signal:
                trainer.fit(
                    train_data,
                    validation_data=val_data,
                    epochs=cfg.training.epochs,
                    initial_epoch=epochs_done,
                    # an ended epoch is logged, checked, then kept
                    callbacks=[
                        *([order] if order else []),
                        epoch_logger,
                        StopOnDivergence(),
                        checkpoint,
                        stop_on_signal,
                    ],
                    shuffle=False,  # train_data reshuffles itself each epoch
                    verbose=progress_mode(cfg.training.verbose),
                )
        except BaseException:
            epoch_logger.close(check=False)  # store what was logged; the original error goes on
            raise
    epoch_logger.close()
    history = checkpoint.history
    test_data = batches(data.test, classes, eval_batch_size)
    probabilities = predict_while(lambda: log_training_artifacts(cfg, record, model, history), trainer, test_data)
    results = classification_metrics(data.test.labels, probabilities)
    results |= summary_metrics(history, len(data.train))
    record.log_metrics(results)
    predicted = probabilities.argmax(axis=1)
    figure = plots.confusion_matrix(data.test.labels, predicted, list(cfg.dataset.class_names))
    record.log_figure(figure, "plots/confusion_matrix.png")
    return results


def start_run(
    client: MlflowClient, cfg: DictConfig, experiment_id: str, parent: str | None, tags: dict[str, str]
) -> str:
    """A new run of the experiment (a child of ``parent`` in a sweep), or the resumed one, marked RUNNING."""
    if cfg.get("resume"):
        client.update_run(cfg.resume, status="RUNNING")
        return cfg.resume
    name = cfg.tracking.run_name
    if parent is not None:  # the job number keeps names apart when two jobs' values round alike
        tags = tags | {MLFLOW_PARENT_RUN_ID: parent}
        name = f"{name}-{tags[sweep.JOB_TAG]}"
    run = client.create_run(experiment_id, run_name=name, tags=resolve_tags(tags))
    return run.info.run_id


def train(cfg: DictConfig) -> dict[str, float | str]:
    """Train and evaluate the configured model, tracked as one MLflow run; return its metrics.

    The config is checked before anything is loaded or recorded. The returned
    ``objective`` is the value of ``cfg.objective.metric``, what sweeps optimise.
    In a sweep the run is a child of the sweep's parent run, in the parent's
    experiment. With ``resume`` set, the named run continues from its checkpoint.
    Ctrl-C or SIGTERM ends the run KILLED with its metrics and last checkpoint.
    What the store does not take in time waits in the run's journal (``RunRecord``).
    """
    start = resume.resume_point(cfg) if cfg.get("resume") else None
    if start is not None:
        cfg = start.cfg
    schema.validate(cfg, known_datasets=group_options("dataset"))
    machine = this_machine()
    plan = choose_plan(cfg.training, cfg.model, machine)
    log.info("precision %s: %s", plan.precision, plan.precision_reason)
    if plan.warning:
        log.warning(plan.warning)
    parallel.set_threads(plan)
    keras.backend.clear_session()
    keras.utils.set_random_seed(cfg.training.seed)
    if cfg.training.deterministic:
        tf.config.experimental.enable_op_determinism()
    model = compile_model(cfg, plan.precision, plan.xla)
    if start is not None and start.model_file is not None:
        model = keras.models.load_model(start.model_file)
    log.info("%s: %s parameters, batches in %d shards", model.name, f"{model.count_params():,}", plan.shards)
    trainer = parallel.in_shards(model, plan.shards)

    parent = sweep.parent_run_id()
    experiment_id = tracking.connect(cfg.tracking, patient=parent is not None)
    client = MlflowClient(cfg.tracking.uri)
    if parent is not None:
        experiment_id = client.get_run(parent).info.experiment_id
    digest = tracking.config_hash(cfg)
    if cfg.training.skip_if_done and start is None and (twin := finished_twin(experiment_id, digest)):
        log.info("skipped: run %s (%s) already has this config", twin.info.run_id, twin.info.run_name)
        return {
            **twin.data.metrics,
            "objective": twin.data.metrics[cfg.objective.metric],
            "run_id": twin.info.run_id,
            "skipped": True,
        }

    dataset = DatasetFiles.from_config(cfg.dataset)
    data = partition(load(cfg.dataset), cfg.dataset, cfg.training)

    tags = tracking.run_tags(sweep.hydra_overrides(), dataset.name, dataset.digest, cfg.training.seed)
    tags |= sweep.job_tags() | dict(cfg.tracking.tags) | {CONFIG_HASH_TAG: digest}
    tags |= {PRECISION_REASON_TAG: plan.precision_reason, MACHINE_TAG: machine.describe()}
    try:
        run_id = retrying(
            lambda: start_run(client, cfg, experiment_id, parent, tags), cfg.tracking.retry_s, Event(), "the new run"
        )
    except StoreAwayError as exc:
        raise tracking.store_error(cfg.tracking.uri, exc.__cause__ or exc) from exc
    record = RunRecord(client, run_id, resume.run_folder(cfg.tracking, run_id), cfg.tracking.retry_s)
    with recorded_stop(record, resume.checkpoint_folder(record.folder)):
        if start is None:
            record.log_params(tracking.flatten(OmegaConf.to_container(cfg, resolve=True)))
            record.log_params({"model.num_params": model.count_params(), PRECISION_PARAM: plan.precision})
            record.log_text(OmegaConf.to_yaml(cfg, resolve=True), CONFIG_FILE)
        results = fit_and_log(cfg, model, trainer, data, record, start)
        record.terminate("FINISHED")
    if record.close():
        shutil.rmtree(record.folder, ignore_errors=True)  # all is in the store: checkpoint and journal done with

    metric = objective_metric(cfg.objective.metric, results)
    log.info(
        "test accuracy %.4f, test loss %.4f, %s; objective %s = %.4f (run %s)",
        results["test_accuracy"],
        results["test_loss"],
        f"best val accuracy {results['best_val_accuracy']:.4f}"
        if "best_val_accuracy" in results
        else "no validation data",
        metric if metric == cfg.objective.metric else f"{metric} (no validation data for {cfg.objective.metric})",
        results[metric],
        run_id,
    )
    return {**results, "objective": results[metric], "objective_metric": metric, "run_id": run_id}


def objective_metric(configured: str, results: dict[str, float]) -> str:
    """The metric the objective uses: the configured one, or its test counterpart when there was no validation."""
    return configured if configured in results else configured.replace("best_val_", "test_")
