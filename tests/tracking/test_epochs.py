"""The per-epoch logger: a real Keras fit on a few random images, its writes in a real SQLite store."""

from __future__ import annotations

import keras
import numpy as np

from mnist_exp.tracking.epochs import MlflowEpochLogger, metric_name
from mnist_exp.tracking.record import RunRecord
from mnist_exp.tracking.store import open_store


def tiny_fit(logger: MlflowEpochLogger, epochs: int, initial_epoch: int = 0) -> None:
    rng = np.random.default_rng(0)
    images, labels = rng.random((32, 4), dtype=np.float32), keras.utils.to_categorical(rng.integers(0, 2, 32), 2)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(images, labels, validation_split=0.25, epochs=epochs, initial_epoch=initial_epoch, verbose=0,
              callbacks=[logger])  # fmt: skip
    logger.close()


def steps(client, run_id: str, metric: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, metric))


def test_each_epoch_is_logged_once_at_its_1_based_step_with_its_time_and_rate(tmp_path) -> None:
    client = open_store(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_id = client.create_run(client.create_experiment("e")).info.run_id
    record = RunRecord(client, run_id, tmp_path / "run", retry_s=0.2)
    logger = MlflowEpochLogger(record, train_samples=24)
    tiny_fit(logger, epochs=2)
    for metric in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "epoch_time_s", "learning_rate"):
        assert steps(client, run_id, metric) == [1, 2], metric
    rates = client.get_metric_history(run_id, "train_samples_per_s")
    assert all(m.value > 0 for m in rates) and len(rates) == 2
    assert set(logger.times) == {"epoch_time_s", "epoch_train_time_s"}
    assert logger.times["epoch_train_time_s"] <= logger.times["epoch_time_s"]


def test_a_resumed_run_catches_up_what_its_checkpoint_has_and_logs_nothing_twice(tmp_path) -> None:
    client = open_store(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_id = client.create_run(client.create_experiment("e")).info.run_id
    record = RunRecord(client, run_id, tmp_path / "run", retry_s=0.2)
    client.log_metric(run_id, "epoch_time_s", 1.0, step=1)  # epoch 1 reached the store; epoch 2 only the checkpoint
    history = {"loss": [0.9, 0.8], "val_loss": [1.0, 0.9], "epoch_time_s": [1.0, 1.1], "epoch_train_time_s": [0.8, 0.9]}
    logger = MlflowEpochLogger(record, train_samples=24, logged={1})
    logger.catch_up(history)
    tiny_fit(logger, epochs=3, initial_epoch=2)
    assert steps(client, run_id, "epoch_time_s") == [1, 2, 3]
    assert steps(client, run_id, "train_loss") == [2, 3]  # epoch 1's was the earlier process's to write
    caught_up = {m.step: m.value for m in client.get_metric_history(run_id, "train_samples_per_s")}
    assert caught_up[2] == 24 / 0.9  # from the checkpoint's training time of epoch 2
    assert metric_name("loss") == "train_loss" and metric_name("val_loss") == "val_loss"
