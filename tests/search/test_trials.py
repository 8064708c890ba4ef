"""A job reports each epoch to its trial and stops its training when the pruner says so."""

from __future__ import annotations

import keras
import optuna

from mnist_exp.search.trials import ReportToTrial, epoch_metric
from mnist_exp.tracking.names import PRUNED_EPOCH_ATTR


def test_the_epoch_metric_follows_the_objective_and_the_validation_data() -> None:
    assert epoch_metric("best_val_accuracy", has_validation=True) == "val_accuracy"
    assert epoch_metric("best_val_accuracy", has_validation=False) == "accuracy"
    assert epoch_metric("test_loss", has_validation=True) == "val_loss"


def test_a_trial_worse_than_the_others_is_pruned_at_its_epoch() -> None:
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=0.5))
    reporter = ReportToTrial(study.ask(), "val_accuracy")
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.stop_training = False  # as fit sets it
    reporter.set_model(model)
    reporter.on_epoch_end(0, {"val_accuracy": 0.8})
    assert not reporter.model.stop_training and reporter.pruned_epoch is None
    reporter.on_epoch_end(1, {"loss": 0.3})  # an epoch without the metric reports nothing
    reporter.on_epoch_end(2, {"val_accuracy": 0.2})
    assert reporter.model.stop_training and reporter.pruned_epoch == 3
    trial = study.trials[0]
    assert trial.intermediate_values == {1: 0.8, 3: 0.2} and trial.user_attrs[PRUNED_EPOCH_ATTR] == 3
