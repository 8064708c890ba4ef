"""A sweep job's side of an Optuna search: report each epoch to the job's trial, stop when it is pruned."""

from __future__ import annotations

import logging

import keras
import optuna

from mnist_exp.tracking.names import PRUNED_EPOCH_ATTR

log = logging.getLogger(__name__)


def epoch_metric(objective_metric: str, has_validation: bool) -> str:
    """The Keras log key each epoch reports for the objective (``best_val_accuracy`` -> ``val_accuracy``)."""
    accuracy = "accuracy" in objective_metric
    name = "accuracy" if accuracy else "loss"
    return f"val_{name}" if has_validation else name


class ReportToTrial(keras.callbacks.Callback):
    """After each epoch, reports the objective's epoch metric to the trial; stops training when pruned.

    The pruner (median, successive halving, Hyperband...) decides from every trial's
    reports in the shared storage. A pruned job ends its training there; its run is
    finished as usual, tagged pruned at ``pruned_epoch``.
    """

    def __init__(self, trial: optuna.Trial, metric: str) -> None:
        super().__init__()
        self.trial, self.metric = trial, metric
        self.pruned_epoch: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        value = (logs or {}).get(self.metric)
        if value is None:
            return
        self.trial.report(float(value), epoch + 1)
        if self.trial.should_prune():
            self.pruned_epoch = epoch + 1
            self.trial.set_user_attr(PRUNED_EPOCH_ATTR, self.pruned_epoch)
            log.info("trial %d pruned after epoch %d (%s %.4f)", self.trial.number, epoch + 1, self.metric, value)
            self.model.stop_training = True
