"""The steps of a training run, for ``train``: prepare the data and model, fit, evaluate and log.

Importing this module loads TensorFlow, Keras and MLflow (seconds): ``train`` imports
it once the config has passed its checks.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from mlflow.models import ModelSignature
from mlflow.types import Schema, TensorSpec
from omegaconf import DictConfig, OmegaConf

from mnist_exp import plots, threads
from mnist_exp.callbacks import StopOnDivergence, StopOnSignal
from mnist_exp.data import Loaded, load
from mnist_exp.network import compile_model
from mnist_exp.pipeline import EpochOrder, Partition, batches, partition, steps_per_epoch
from mnist_exp.plan import Plan, this_machine
from mnist_exp.plan import plan as choose_plan
from mnist_exp.search.job_trial import JobTrial
from mnist_exp.search.trials import ReportToTrial, epoch_metric
from mnist_exp.speed import predict_while
from mnist_exp.tracking import multirun, names, runs
from mnist_exp.tracking.params import flatten
from mnist_exp.tracking.record import RunRecord
from mnist_exp.tracking.training_run import ResumePoint, TrainingRun

log = logging.getLogger(__name__)


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
    return {names.TEST_LOSS: float(np.mean(loss)), names.TEST_ACCURACY: float(accuracy)}


def signature(dataset_cfg: DictConfig) -> ModelSignature:
    """What the logged model takes and returns: float32 images in [0, 1], and class probabilities."""
    images = TensorSpec(np.dtype(np.float32), (-1, *dataset_cfg.image_shape))
    probabilities = TensorSpec(np.dtype(np.float32), (-1, dataset_cfg.num_classes))
    return ModelSignature(inputs=Schema([images]), outputs=Schema([probabilities]))


def log_model(cfg: DictConfig, record: RunRecord, model: keras.Model, epoch: int) -> None:
    """The model, holding ``epoch``'s weights, as a LoggedModel of the run at that step."""
    record.log_model(model, signature(cfg.dataset).to_dict(), runs.model_requirements(), epoch)


def log_training_artifacts(cfg: DictConfig, record: RunRecord, model: keras.Model, history: dict, epoch: int) -> None:
    """Learning curves, model summary and the run's model (``epoch``'s; with ``checkpoints=every``, logged already)."""
    record.log_figure(plots.learning_curves(history), names.LEARNING_CURVES_FILE)
    record.log_text(model_summary(model), names.MODEL_SUMMARY_FILE)
    if cfg.tracking.log_model and cfg.tracking.checkpoints != "every":
        log_model(cfg, record, model, epoch)


def summary_metrics(history: dict[str, list[float]], train_samples: int) -> dict[str, float]:
    """Totals over every epoch of the run (a resumed one's included): time, throughput, best validation accuracy."""
    epoch_times, train_times = history[names.EPOCH_TIME], history[names.EPOCH_TRAIN_TIME]
    metrics = {
        names.RUN_TRAIN_TIME: float(sum(epoch_times)),
        names.EPOCH_TIME_MEAN: float(np.mean(epoch_times)),
        names.SAMPLES_PER_S_MEAN: train_samples * len(train_times) / sum(train_times),
    }
    if "val_accuracy" in history:  # Keras's log key, the same as the metric's name
        metrics[names.BEST_VAL_ACCURACY] = float(max(history["val_accuracy"]))
    return metrics


def trial_reporter(cfg: DictConfig, has_validation: bool) -> ReportToTrial | None:
    """In an Optuna search, the callback that reports each epoch to the job's trial and stops it when pruned."""
    job_trial = JobTrial.from_env()
    if job_trial is None:
        return None
    return ReportToTrial(job_trial.open(), epoch_metric(cfg.objective.metric, has_validation))


def fit_and_log(cfg: DictConfig, setup: Setup, run: TrainingRun) -> dict[str, float]:
    """Train from where the run left off to the configured epochs, evaluate, and log metrics and artifacts.

    ``setup.trainer`` fits and predicts (the model, or the model in batch shards);
    ``setup.model`` is what is checkpointed and logged.
    """
    model, trainer, data, record = setup.model, setup.trainer, setup.data, run.record
    classes, eval_batch_size = cfg.dataset.num_classes, cfg.training.eval_batch_size
    epochs_done = run.start.epochs_done if run.start else 0
    order = EpochOrder(cfg.training.seed, len(data.train))
    train_data = batches(data.train, classes, cfg.training.batch_size, order if cfg.training.shuffle else None)
    val_data = batches(data.val, classes, eval_batch_size) if len(data.val) else None
    every = cfg.tracking.log_model and cfg.tracking.checkpoints == "every"
    kept = run.checkpoints(
        model,
        len(data.train),
        monitor=epoch_metric(cfg.objective.metric, has_validation=val_data is not None),
        maximize=cfg.objective.direction == "maximize",
        log_epoch=(lambda epoch: log_model(cfg, record, model, epoch)) if every else None,
    )
    pruning = trial_reporter(cfg, has_validation=val_data is not None)
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
                        kept.epochs,
                        StopOnDivergence(),
                        kept.checkpoint,
                        kept.best,
                        *([pruning] if pruning else []),
                        stop_on_signal,
                    ],
                    shuffle=False,  # train_data reshuffles itself each epoch
                    verbose=progress_mode(cfg.training.verbose),
                )
        except BaseException:
            kept.epochs.close(check=False)  # store what was logged; the original error goes on
            raise
    kept.epochs.close()
    if pruning is not None and pruning.pruned_epoch is not None:
        record.set_tags({names.PRUNED_TAG: "true", names.PRUNED_EPOCH_TAG: str(pruning.pruned_epoch)})
    history = kept.checkpoint.history
    last = len(history[names.EPOCH_TIME])
    # the run's model, tested and logged: the last epoch's, or the best one's
    epoch = last if cfg.tracking.checkpoints == "last" else kept.best.restore(last)
    test_data = batches(data.test, classes, eval_batch_size)
    probabilities = predict_while(
        lambda: log_training_artifacts(cfg, record, model, history, epoch), trainer, test_data
    )
    results = classification_metrics(data.test.labels, probabilities)
    results |= summary_metrics(history, len(data.train))
    if cfg.tracking.log_model:  # the final metrics, linked to the model they measure
        record.log_run_model(epoch, results)
    else:
        record.log_metrics(results)
    predicted = probabilities.argmax(axis=1)
    figure = plots.confusion_matrix(data.test.labels, predicted, list(cfg.dataset.class_names))
    record.log_figure(figure, names.CONFUSION_MATRIX_FILE)
    return results


@dataclass(frozen=True)
class Setup:
    """What a run trains: the machine's plan, the data, the model and what fits it."""

    plan: Plan
    machine: str  # the machine's description, as the run's tag records it
    dataset: Loaded  # the arrays as read, their digest and source
    data: Partition
    model: keras.Model
    trainer: keras.Model  # ``model``, or ``model`` computing its batches in shards


def prepare(cfg: DictConfig, start: ResumePoint | None) -> Setup:
    """Plan the computation for this machine, seed everything, load the data, build (or restore) the model."""
    machine = this_machine()
    machine_plan = choose_plan(cfg.training, cfg.model, machine)
    log.info("precision %s: %s", machine_plan.precision, machine_plan.precision_reason)
    if machine_plan.warning:
        log.warning(machine_plan.warning)
    threads.set_threads(machine_plan)
    keras.backend.clear_session()
    keras.utils.set_random_seed(cfg.training.seed)
    if cfg.training.deterministic:
        tf.config.experimental.enable_op_determinism()
    dataset = load(cfg.dataset)
    data = partition(dataset.splits, cfg.dataset, cfg.training)
    steps = steps_per_epoch(data.train, cfg.training.batch_size)
    model = compile_model(cfg, steps, machine_plan.precision, machine_plan.xla)
    if start is not None and start.model_file is not None:
        model = keras.models.load_model(start.model_file)
    log.info("%s: %s parameters, batches in %d shards", model.name, f"{model.count_params():,}", machine_plan.shards)
    trainer = threads.in_shards(model, machine_plan.shards)
    return Setup(machine_plan, machine.describe(), dataset, data, model, trainer)


def run_tags(cfg: DictConfig, setup: Setup) -> dict[str, str]:
    """The tags a new run starts with: what produced it, its data and seed, and the machine's plan."""
    tags = runs.run_tags(multirun.hydra_overrides(), cfg.dataset.name, setup.dataset.digest, cfg.training.seed)
    return tags | {names.PRECISION_REASON_TAG: setup.plan.precision_reason, names.MACHINE_TAG: setup.machine}


def log_config(cfg: DictConfig, record: RunRecord, setup: Setup) -> None:
    """Every resolved config value as a param, the computed ones beside them, and the config file."""
    record.log_params(flatten(OmegaConf.to_container(cfg, resolve=True)))
    record.log_params({names.NUM_PARAMS_PARAM: setup.model.count_params(), names.PRECISION_PARAM: setup.plan.precision})
    record.log_text(OmegaConf.to_yaml(cfg, resolve=True), names.CONFIG_FILE)
    data = setup.data
    parts = {
        "training": (data.train.images, data.train.labels),
        "validation": (data.val.images, data.val.labels),
        "test": (data.test.images, data.test.labels),
    }
    record.log_inputs(runs.dataset_inputs(cfg.dataset.name, setup.dataset.source, parts))
