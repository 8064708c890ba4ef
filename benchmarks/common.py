"""Shared by the naive scripts: the same verified MNIST arrays, and epoch timing."""

from __future__ import annotations

import time

import numpy as np

from mnist_exp.config import compose
from mnist_exp.data import load


def mnist_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """float32 images in [0, 1] shaped (N, 28, 28, 1) and one-hot labels, as the recipe says."""
    splits = load(compose(["dataset=mnist"]).dataset).splits
    eye = np.eye(10, dtype=np.float32)
    x_train = (splits.train_images.astype(np.float32) / 255.0)[..., None]
    x_test = (splits.test_images.astype(np.float32) / 255.0)[..., None]
    return x_train, eye[splits.train_labels], x_test, eye[splits.test_labels]


def epoch_timer(keras):  # keras passed in: this module stays framework-free
    """A Keras callback recording each epoch's wall time and its training part."""

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.epoch_s: list[float] = []
            self.train_s: list[float] = []

        def on_epoch_begin(self, epoch, logs=None) -> None:
            self.start = self.train_end = time.perf_counter()

        def on_test_begin(self, logs=None) -> None:
            self.train_end = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None) -> None:
            now = time.perf_counter()
            self.epoch_s.append(now - self.start)
            self.train_s.append((self.train_end if self.train_end > self.start else now) - self.start)

    return EpochTimer()
