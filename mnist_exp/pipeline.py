"""Turn raw uint8 splits into model-ready arrays and tf.data pipelines."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from omegaconf import DictConfig

from mnist_exp.data import Splits


@dataclass(frozen=True)
class Arrays:
    """Float32 images in [0, 1] shaped (N, H, W, C) and one-hot float32 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def scale(images: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """uint8 pixels to float32 in [0, 1], shaped (N, *image_shape)."""
    return (images.astype(np.float32) / np.float32(255.0)).reshape(-1, *image_shape)


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Integer labels to one-hot float32 rows."""
    return np.eye(num_classes, dtype=np.float32)[labels]


def prepare(splits: Splits, dataset_cfg: DictConfig, training_cfg: DictConfig) -> Arrays:
    """Scale, one-hot encode, and hold out a seeded random validation split."""
    shape = tuple(dataset_cfg.image_shape)
    x = scale(splits.train_images, shape)
    y = one_hot(splits.train_labels, dataset_cfg.num_classes)
    order = np.random.default_rng(training_cfg.seed).permutation(len(x))
    n_val = round(len(x) * training_cfg.validation_split)
    val, train = order[:n_val], order[n_val:]
    return Arrays(
        x_train=x[train],
        y_train=y[train],
        x_val=x[val],
        y_val=y[val],
        x_test=scale(splits.test_images, shape),
        y_test=one_hot(splits.test_labels, dataset_cfg.num_classes),
    )


def batches(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle_seed: int | None = None) -> tf.data.Dataset:
    """Batched, prefetched examples; reshuffled every epoch when ``shuffle_seed`` is given.

    The arrays stay whole in memory and each batch is gathered by index, so
    tf.data does per-batch rather than per-example work.
    """
    images, labels = tf.constant(x), tf.constant(y)
    order = tf.data.Dataset.range(len(x))
    if shuffle_seed is not None:
        order = order.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    return (
        order.batch(batch_size)
        .map(lambda i: (tf.gather(images, i), tf.gather(labels, i)), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
