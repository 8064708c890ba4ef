"""Batch shards learn what whole batches learn."""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import pytest
import tensorflow as tf

from mnist_exp.config import compose
from mnist_exp.network import compile_model
from mnist_exp.pipeline import Subset, batches
from mnist_exp.speed import predict_batches
from mnist_exp.threads import in_shards


def test_a_step_in_uneven_shards_learns_what_a_whole_batch_step_learns(tmp_path) -> None:
    cfg = compose(["optimizer=sgd", "training.batch_size=8", "training.steps_per_execution=1"])
    keras.utils.set_random_seed(0)
    whole, split = compile_model(cfg, 750), compile_model(cfg, 750)
    split.set_weights(whole.get_weights())
    trainer = in_shards(split, 3)  # 8 images in parts of 2, 3 and 3
    rng = np.random.default_rng(0)
    images = rng.random((8, 28, 28, 1), dtype=np.float32)
    labels = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 8)]
    for _ in range(3):
        whole_logs = whole.train_on_batch(images, labels, return_dict=True)
        split_logs = trainer.train_on_batch(images, labels, return_dict=True)
        assert split_logs == pytest.approx(whole_logs, rel=1e-5)
    for whole_weights, split_weights in zip(whole.get_weights(), split.get_weights(), strict=True):
        np.testing.assert_allclose(split_weights, whole_weights, atol=1e-6)
    split.save(tmp_path / "model.keras")  # what the epoch checkpoint saves: the plain model, with the state
    restored = keras.models.load_model(tmp_path / "model.keras")
    assert type(restored) is type(whole)
    assert int(restored.optimizer.iterations) == 3


def test_predictions_in_shards_match_even_for_fewer_images_than_shards() -> None:
    model = compile_model(compose(), 750)
    trainer = in_shards(model, 2)
    images = np.random.default_rng(1).random((5, 28, 28, 1), dtype=np.float32)
    for batch in (images, images[:1]):
        np.testing.assert_allclose(trainer.predict(batch, verbose=0), model.predict(batch, verbose=0), atol=1e-6)


def test_test_predictions_batch_by_batch_keep_every_image_in_order() -> None:
    model = compile_model(compose(), 750)  # the default steps_per_execution: 32
    rng = np.random.default_rng(2)
    test = Subset(rng.integers(0, 256, (70, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, 70))
    predicted = predict_batches(in_shards(model, 2), batches(test, 10, 32))  # 32, 32 and a short 6
    expected = model.predict(test.images.astype(np.float32) / 255.0, verbose=0)
    np.testing.assert_allclose(predicted, expected, atol=1e-6)


def test_one_shard_trains_the_model_itself() -> None:
    model = compile_model(compose(), 750)
    assert in_shards(model, 1) is model


def test_training_creates_no_variables_in_the_traced_step() -> None:
    """Variables made while a step is traced make TensorFlow trace it again; all exist before fit."""
    cfg = compose(["training.batch_size=8", "training.steps_per_execution=2"])
    trainer = in_shards(compile_model(cfg, 2), 2)
    rng = np.random.default_rng(3)
    images = rng.random((16, 28, 28, 1), dtype=np.float32)
    labels = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 16)]
    created: list[str] = []

    def record(next_creator: Callable[..., tf.Variable], **kwargs: object) -> tf.Variable:
        created.append(kwargs.get("name"))
        return next_creator(**kwargs)

    with tf.variable_creator_scope(record):
        trainer.fit(images, labels, batch_size=8, epochs=1, verbose=0)
    assert created == []
    assert int(trainer.optimizer.iterations) == 2
