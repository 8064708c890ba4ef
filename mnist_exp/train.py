"""``train(cfg)``: one experiment from a composed config to a finished MLflow run."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import mlflow
import numpy as np
import tensorflow as tf
from mlflow.models import ModelSignature
from mlflow.types import Schema, TensorSpec
from omegaconf import DictConfig, OmegaConf

from mnist_exp import parallel, plots, resume, schema, sweep, tracking
from mnist_exp.callbacks import EpochCheckpoint, MlflowEpochLogger, StopOnSignal
from mnist_exp.config import group_options
from mnist_exp.data import DatasetFiles, load
from mnist_exp.model import compile_model
from mnist_exp.pipeline import Partition, batches, partition

log = logging.getLogger(__name__)
CONFIG_HASH_TAG = "config.hash"


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


def log_training_artifacts(cfg: DictConfig, model: keras.Model, history: dict) -> None:
    """Learning curves, model summary and the model itself."""
    mlflow.log_figure(plots.learning_curves(history), "plots/learning_curves.png")
    mlflow.log_text(model_summary(model), "model_summary.txt")
    if cfg.tracking.log_model:
        mlflow.keras.log_model(
            model, name="model", signature=signature(cfg.dataset), pip_requirements=tracking.model_requirements()
        )


def predict_while(log: Callable[[], None], model: keras.Model, images: tf.data.Dataset) -> np.ndarray:
    """The model's class probabilities for ``images``, predicted on a worker thread while ``log`` runs here.

    Prediction runs in TensorFlow, mostly without the GIL, so MLflow's logging
    (which keeps its active run per thread, hence here) no longer waits for it.
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
def recorded_stop(folder: Path, run_id: str) -> Iterator[None]:
    """Whatever stops training early leaves the run with its metrics so far and its last checkpoint.

    Ctrl-C or SIGTERM ends the run KILLED; an error leaves it FAILED with the error as a tag.
    """
    try:
        yield
    except BaseException as exc:
        resume.log_checkpoint(folder)
        if isinstance(exc, KeyboardInterrupt):
            log.warning("interrupted: run %s ends KILLED; continue it with resume=%s", run_id, run_id)
            mlflow.end_run("KILLED")
        else:
            mlflow.set_tags(sweep.error_tags(exc))
            mlflow.log_text(traceback.format_exc(), "error.txt")
        raise


def fit_and_log(
    cfg: DictConfig,
    model: keras.Model,
    trainer: keras.Model,
    data: Partition,
    run_id: str,
    folder: Path,
    epochs_done: int,
) -> dict[str, float]:
    """Train from ``epochs_done`` to the configured epochs, evaluate, and log metrics and artifacts.

    ``trainer`` fits and predicts (``model``, or ``model`` in batch shards);
    ``model`` is what is checkpointed and logged.
    """
    classes, eval_batch_size = cfg.dataset.num_classes, cfg.training.eval_batch_size
    seed = cfg.training.seed if cfg.training.shuffle else None
    train_data = batches(data.train, classes, cfg.training.batch_size, seed)
    val_data = batches(data.val, classes, eval_batch_size) if len(data.val) else None
    epoch_logger = MlflowEpochLogger(run_id, len(data.train))
    try:
        with StopOnSignal() as stop_on_signal:
            fit = trainer.fit(
                train_data,
                validation_data=val_data,
                epochs=cfg.training.epochs,
                initial_epoch=epochs_done,
                callbacks=[epoch_logger, EpochCheckpoint(folder, model), stop_on_signal],  # an ended epoch is kept
                shuffle=False,  # train_data reshuffles itself each epoch
                verbose=progress_mode(cfg.training.verbose),
            )
    except BaseException:
        epoch_logger.close(check=False)  # store what was logged; the original error goes on
        raise
    epoch_logger.close()
    history = resume.full_history(run_id) if epochs_done else fit.history
    test_data = batches(data.test, classes, eval_batch_size)
    probabilities = predict_while(lambda: log_training_artifacts(cfg, model, history), trainer, test_data)
    results = classification_metrics(data.test.labels, probabilities) | {
        "best_val_accuracy": float(max(history.get("val_accuracy", history["accuracy"]))),
        "train_time_s": float(sum(epoch_logger.epoch_times)),
        "epoch_time_s_mean": float(np.mean(epoch_logger.epoch_times)),
        "train_samples_per_s_mean": len(data.train) * len(epoch_logger.train_times) / sum(epoch_logger.train_times),
    }
    mlflow.log_metrics(results)
    predicted = probabilities.argmax(axis=1)
    figure = plots.confusion_matrix(data.test.labels, predicted, list(cfg.dataset.class_names))
    mlflow.log_figure(figure, "plots/confusion_matrix.png")
    return results


def train(cfg: DictConfig) -> dict[str, float | str]:
    """Train and evaluate the configured model, tracked as one MLflow run; return its metrics.

    The config is checked before anything is loaded or recorded. The returned
    ``objective`` is the value of ``cfg.objective.metric``, what sweeps optimise.
    In a sweep the run is a child of the sweep's parent run, in the parent's
    experiment. With ``resume`` set, the named run continues from its checkpoint.
    Ctrl-C or SIGTERM ends the run KILLED with its metrics and last checkpoint.
    """
    checkpoint, epochs_done = None, 0
    if cfg.get("resume"):
        cfg, checkpoint, epochs_done = resume.resume_point(cfg)
    schema.validate(cfg, known_datasets=group_options("dataset"))
    plan = parallel.plan(cfg.training, cfg.model)
    parallel.set_threads(plan)
    keras.backend.clear_session()
    keras.utils.set_random_seed(cfg.training.seed)
    if cfg.training.deterministic:
        tf.config.experimental.enable_op_determinism()
    model = compile_model(cfg)
    if checkpoint is not None:
        model = keras.models.load_model(checkpoint)
    log.info("%s: %s parameters, batches in %d shards", model.name, f"{model.count_params():,}", plan.shards)
    trainer = parallel.in_shards(model, plan.shards)

    experiment_id = tracking.connect(cfg.tracking)
    parent = sweep.parent_run_id()
    if parent is not None:
        experiment_id = mlflow.get_run(parent).info.experiment_id
    digest = tracking.config_hash(cfg)
    if cfg.training.skip_if_done and checkpoint is None and (twin := finished_twin(experiment_id, digest)):
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
    start = (
        {"run_id": cfg.resume}
        if checkpoint is not None
        else {"experiment_id": experiment_id, "run_name": cfg.tracking.run_name, "parent_run_id": parent, "tags": tags}
    )
    with (
        tempfile.TemporaryDirectory(prefix="mnist-exp-checkpoint-") as folder,
        mlflow.start_run(**start) as run,
        recorded_stop(Path(folder), run.info.run_id),
    ):
        if checkpoint is None:
            mlflow.log_params(tracking.flatten(OmegaConf.to_container(cfg, resolve=True)))
            mlflow.log_param("model.num_params", model.count_params())
            mlflow.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
        results = fit_and_log(cfg, model, trainer, data, run.info.run_id, Path(folder), epochs_done)

    log.info(
        "test accuracy %.4f, test loss %.4f, best val accuracy %.4f (run %s)",
        results["test_accuracy"],
        results["test_loss"],
        results["best_val_accuracy"],
        run.info.run_id,
    )
    return {**results, "objective": results[cfg.objective.metric], "run_id": run.info.run_id}
