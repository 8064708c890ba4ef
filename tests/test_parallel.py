"""Batch shards learn what whole batches learn, and each machine and model gets its thread plan."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest

from mnist_exp.config import compose
from mnist_exp.model import compile_model
from mnist_exp.parallel import Plan, in_shards, plan

BATCH_NORM = "+model.layers.norm={_target_: keras.layers.BatchNormalization}"


def test_a_step_in_uneven_shards_learns_what_a_whole_batch_step_learns(tmp_path) -> None:
    cfg = compose(["optimizer=sgd", "training.batch_size=8", "training.steps_per_execution=1"])
    keras.utils.set_random_seed(0)
    whole, split = compile_model(cfg), compile_model(cfg)
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
    model = compile_model(compose())
    trainer = in_shards(model, 2)
    images = np.random.default_rng(1).random((5, 28, 28, 1), dtype=np.float32)
    for batch in (images, images[:1]):
        np.testing.assert_allclose(trainer.predict(batch, verbose=0), model.predict(batch, verbose=0), atol=1e-6)


def test_one_shard_trains_the_model_itself() -> None:
    model = compile_model(compose())
    assert in_shards(model, 1) is model


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["training.threads=3"], Plan(shards=3, intra_op_threads=1, inter_op_threads=3)),
        (["training.threads=1"], Plan(shards=1, intra_op_threads=1, inter_op_threads=1)),
        (["training.batch_shards=1"], Plan(shards=1, intra_op_threads=0, inter_op_threads=0)),
        (["training.batch_shards=4"], Plan(shards=4, intra_op_threads=1, inter_op_threads=4)),
        (["training.threads=2", "training.batch_shards=4"], Plan(shards=4, intra_op_threads=1, inter_op_threads=2)),
        (["training.threads=8", "training.batch_size=4"], Plan(shards=4, intra_op_threads=1, inter_op_threads=8)),
        (["training.threads=2", BATCH_NORM], Plan(shards=1, intra_op_threads=2, inter_op_threads=2)),
    ],
)
def test_the_plan_splits_batches_one_part_per_thread_unless_told_or_unfit(overrides, expected) -> None:
    cfg = compose(overrides)
    assert plan(cfg.training, cfg.model) == expected


def test_by_default_a_cpu_job_splits_batches_one_part_per_core() -> None:
    cfg = compose()
    cores = len(os.sched_getaffinity(0))
    assert plan(cfg.training, cfg.model) == (Plan(cores, 1, cores) if cores > 1 else Plan(1, 0, 0))
