"""Split the raw uint8 arrays and feed them to the model as tf.data batches.

Images stay uint8 in memory (a quarter of the float32 size); each batch is
gathered by index, then scaled to float32 in [0, 1] with one-hot labels, so
tf.data does per-batch rather than per-example work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from omegaconf import DictConfig

from mnist_exp.data import Splits
from mnist_exp.speed import fixed_pipeline


@dataclass(frozen=True)
class Subset:
    """Part of a dataset: uint8 images shaped (N, H, W, C) and their integer labels."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Partition:
    """The training images, the validation images held out from them, and the test images."""

    train: Subset
    val: Subset
    test: Subset


def steps_per_epoch(subset: Subset, batch_size: int) -> int:
    """Batches in one pass over ``subset`` (the last one may be short)."""
    return math.ceil(len(subset) / batch_size)


def scale(images: np.ndarray | tf.Tensor) -> tf.Tensor:
    """uint8 pixels to float32 in [0, 1]."""
    return tf.cast(images, tf.float32) / 255.0


def split_sizes(train_size: int, validation_split: float) -> tuple[int, int]:
    """How many of the training images are trained on and how many are held out for validation."""
    n_val = round(train_size * validation_split)
    return train_size - n_val, n_val


def partition(splits: Splits, dataset_cfg: DictConfig, training_cfg: DictConfig) -> Partition:
    """Shape the images and hold out a seeded random validation split of the training images."""
    shape = (-1, *dataset_cfg.image_shape)
    images = splits.train_images.reshape(shape)
    order = np.random.default_rng(training_cfg.seed).permutation(len(images))
    _, n_val = split_sizes(len(images), training_cfg.validation_split)
    val, train = order[:n_val], order[n_val:]
    return Partition(
        train=Subset(images[train], splits.train_labels[train]),
        val=Subset(images[val], splits.train_labels[val]),
        test=Subset(splits.test_images.reshape(shape), splits.test_labels),
    )


class EpochOrder(keras.callbacks.Callback):
    """The order of the training images in each epoch, from the seed and the epoch number alone.

    Not from how many passes this process has made: a run resumed at epoch k takes
    epoch k's images in the order an uninterrupted run would. Fit tells it the epoch
    as the epoch begins (it is a callback), before the epoch's data is drawn.
    """

    def __init__(self, seed: int, size: int) -> None:
        super().__init__()
        self.seed, self.size = seed, size
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch.assign(epoch)

    def indices(self) -> tf.data.Dataset:
        """The image indices of the current epoch, in its order (drawn when a pass begins)."""

        def shuffled(_: tf.Tensor) -> tf.Tensor:
            seed = tf.stack([tf.constant(self.seed, tf.int64), self.epoch.read_value()])
            return tf.random.experimental.stateless_shuffle(tf.range(self.size, dtype=tf.int64), seed=seed)

        order = tf.data.Dataset.from_tensors(0).map(shuffled).unbatch()
        return order.apply(tf.data.experimental.assert_cardinality(self.size))


def batches(subset: Subset, num_classes: int, batch_size: int, order: EpochOrder | None = None) -> tf.data.Dataset:
    """One pass of scaled images and one-hot labels in batches, prefetched.

    With ``order``, each epoch takes the images in that epoch's order; without, in
    their stored order. The pipeline is finite on purpose: Keras counts an epoch's
    steps from it and ends the last ``steps_per_execution`` chunk where the data
    ends. (Fitted as an endless pipeline with ``steps_per_epoch``, Keras 3 runs
    whole chunks: 768 steps instead of 750 per epoch for the reference run.)
    """
    images, labels = tf.constant(subset.images), tf.constant(subset.labels)
    indices = order.indices() if order is not None else tf.data.Dataset.range(len(subset))
    dataset = indices.batch(batch_size).map(
        lambda i: (scale(tf.gather(images, i)), tf.one_hot(tf.gather(labels, i), num_classes))
    )
    return dataset.prefetch(2).with_options(fixed_pipeline())
