"""The input pipeline: the validation split, and the batches the model sees."""

from __future__ import annotations

import numpy as np
from omegaconf import OmegaConf

from mnist_exp.data import Splits
from mnist_exp.pipeline import EpochOrder, Subset, batches, partition, split_sizes


def numbered(n: int) -> Subset:
    """n one-pixel-valued images: image i is filled with i, its label is i % 10."""
    images = np.repeat(np.arange(n, dtype=np.uint8), 4).reshape(n, 2, 2, 1)
    return Subset(images, (np.arange(n) % 10).astype(np.uint8))


def indices(batch_images: np.ndarray) -> list[int]:
    return [round(v) for v in (batch_images[:, 0, 0, 0] * 255).tolist()]


def test_partition_holds_out_a_seeded_validation_split() -> None:
    raw = Splits(
        train_images=np.arange(100 * 4, dtype=np.uint8).reshape(100, 2, 2) % 251,
        train_labels=(np.arange(100) % 10).astype(np.uint8),
        test_images=np.zeros((10, 2, 2), np.uint8),
        test_labels=np.zeros(10, np.uint8),
    )
    dataset = OmegaConf.create({"image_shape": [2, 2, 1]})
    first = partition(raw, dataset, OmegaConf.create({"seed": 7, "validation_split": 0.2}))
    again = partition(raw, dataset, OmegaConf.create({"seed": 7, "validation_split": 0.2}))
    other = partition(raw, dataset, OmegaConf.create({"seed": 8, "validation_split": 0.2}))
    assert (len(first.train), len(first.val), len(first.test)) == (80, 20, 10) == (*split_sizes(100, 0.2), 10)
    assert first.train.images.shape == (80, 2, 2, 1) and first.train.images.dtype == np.uint8
    assert np.array_equal(first.val.images, again.val.images)
    assert not np.array_equal(first.val.images, other.val.images)
    rows = {tuple(image.ravel()) for image in raw.train_images}
    assert {tuple(i.ravel()) for i in first.train.images} | {tuple(i.ravel()) for i in first.val.images} == rows


def test_every_epoch_sees_each_image_once_in_its_own_order() -> None:
    order = EpochOrder(seed=1, size=100)
    pipeline = batches(numbered(100), num_classes=10, batch_size=32, order=order)

    def epoch(number: int) -> list[int]:
        order.on_epoch_begin(number)
        return [i for images, _ in pipeline for i in indices(images.numpy())]

    assert [len(images) for images, _ in pipeline] == [32, 32, 32, 4]
    assert int(pipeline.cardinality()) == 4  # Keras counts an epoch's steps from this
    first, second = epoch(0), epoch(1)
    assert sorted(first) == sorted(second) == list(range(100))
    assert first != second and first != list(range(100))
    assert epoch(0) == first  # an epoch's order depends on the seed and the epoch, not on the passes before
    resumed = EpochOrder(seed=1, size=100)
    resumed.on_epoch_begin(1)
    assert [i for images, _ in batches(numbered(100), 10, 32, resumed) for i in indices(images.numpy())] == second


def test_batches_are_scaled_to_the_unit_range_with_one_hot_labels() -> None:
    split = numbered(50)
    images, labels = next(iter(batches(split, num_classes=10, batch_size=50)))
    assert images.dtype == "float32" and labels.dtype == "float32"
    np.testing.assert_array_equal(images.numpy(), split.images.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(labels.numpy(), np.eye(10, dtype=np.float32)[split.labels])
