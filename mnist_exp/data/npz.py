"""The npz format: one NumPy archive with ``x_train``, ``y_train``, ``x_test``, ``y_test``.

Images are uint8 in [0, 255] or floats in [0, 1] (or [0, 255]), shaped (N, H, W) or
(N, H, W, C); labels are integers.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from mnist_exp.data.formats import Loaded, Splits, load_problems
from mnist_exp.data.idx import DataError

KEYS = {"x_train": "train_images", "y_train": "train_labels", "x_test": "test_images", "y_test": "test_labels"}


def as_uint8(images: np.ndarray, where: str) -> np.ndarray:
    if images.dtype == np.uint8:
        return images
    if not np.issubdtype(images.dtype, np.number):
        raise DataError(f"{where}: images of dtype {images.dtype}; expected uint8 or float")
    if not np.isfinite(images).all():
        raise DataError(f"{where}: images hold NaN or infinite values")
    scale = 255.0 if images.max() <= 1.0 else 1.0
    return np.clip(np.rint(images * scale), 0, 255).astype(np.uint8)


def npz_num_classes(path: str) -> int:
    """The number of classes an archive's labels cover (the largest label + 1; a config resolver)."""
    with np.load(Path(os.path.expanduser(path)), allow_pickle=False) as archive:
        return int(max(archive["y_train"].max(), archive["y_test"].max())) + 1


class NpzFile:
    """The reader of a NumPy archive of training and test images and labels."""

    def __init__(self, path: str) -> None:
        self.path = Path(os.path.expanduser(path))

    def load(self, dataset: DictConfig) -> Loaded:
        if not self.path.is_file():
            raise DataError(f"dataset.path: no file {self.path}", "point dataset.path at your .npz archive")
        try:
            with np.load(self.path, allow_pickle=False) as archive:
                missing = sorted(set(KEYS) - set(archive.files))
                if missing:
                    raise DataError(
                        f"{self.path}: no array {', '.join(missing)} (it holds {', '.join(archive.files) or 'none'})",
                        "save it with np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)",
                    )
                arrays = {KEYS[key]: archive[key] for key in KEYS}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise DataError(f"{self.path}: not a readable .npz archive ({exc})") from exc
        for role in ("train_labels", "test_labels"):
            labels = arrays[role]
            if not np.issubdtype(labels.dtype, np.integer):
                raise DataError(f"{self.path}: {role} are {labels.dtype}; labels must be integers")
            arrays[role] = labels.astype(np.int64).reshape(-1)
        for role in ("train_images", "test_images"):
            arrays[role] = as_uint8(arrays[role], f"{self.path} {role}")
        digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
        return Loaded(Splits(**arrays), digest, str(self.path))

    def info(self, dataset: DictConfig) -> list[str]:
        if not self.path.is_file():
            return [f"file: {self.path} (missing)"]
        with np.load(self.path, allow_pickle=False) as archive:
            shapes = ", ".join(f"{key} {archive[key].shape} {archive[key].dtype}" for key in archive.files)
        return [f"file: {self.path}", f"arrays: {shapes}"]

    def verify(self, dataset: DictConfig) -> list[str]:
        return load_problems(self, dataset)
