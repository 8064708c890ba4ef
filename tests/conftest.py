"""Shared fixtures: a tiny learnable dataset in the real IDX format, and a temporary MLflow store."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from mnist_exp.data import idx

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FILENAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def synthetic_arrays(n_train: int, n_test: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Noisy 28x28 images whose class is the position of a bright 7x7 square."""
    rng = np.random.default_rng(seed)

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = (np.arange(n) % 10).astype(np.uint8)
        rng.shuffle(labels)
        images = rng.integers(0, 60, size=(n, 28, 28), dtype=np.uint8)
        for i, label in enumerate(labels):
            row, col = divmod(int(label), 4)
            images[i, row * 7 + 3 : row * 7 + 10, col * 7 : col * 7 + 7] = 255
        return images, labels

    train_images, train_labels = make(n_train)
    test_images, test_labels = make(n_test)
    return {
        "train_images": train_images,
        "train_labels": train_labels,
        "test_images": test_images,
        "test_labels": test_labels,
    }


def write_dataset(folder: Path, arrays: dict[str, np.ndarray]) -> dict[str, str]:
    """Write the arrays as IDX files; return each role's sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    digests = {}
    for role, array in arrays.items():
        data = idx.encode(array)
        (folder / FILENAMES[role]).write_bytes(data)
        digests[role] = idx.sha256_bytes(data)
    return digests


def dataset_overrides(folder: Path, digests: dict[str, str], n_train: int, n_test: int) -> list[str]:
    """Hydra overrides that point the mnist dataset config at a synthetic dataset in ``folder``."""
    return [
        f"dataset.cache_dir={folder}",
        f"dataset.train_size={n_train}",
        f"dataset.test_size={n_test}",
        "dataset.sources=[]",
        *(f"dataset.files.{role}.sha256={digest}" for role, digest in digests.items()),
    ]


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Overrides for a 640/160-image synthetic dataset, written once per session."""
    folder = tmp_path_factory.mktemp("synthetic")
    digests = write_dataset(folder, synthetic_arrays(640, 160))
    return dataset_overrides(folder, digests, 640, 160)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A fresh folder for an MLflow SQLite store and its artifacts."""
    return tmp_path / "mlruns"


@pytest.fixture
def quick(synthetic: list[str], store: Path) -> list[str]:
    """Overrides for a fast, fully tracked run on synthetic data in a temporary store."""
    return [
        *synthetic,
        f"tracking.store_dir={store}",
        "training.epochs=2",
        "training.batch_size=32",
        "training.steps_per_execution=4",
    ]


@pytest.fixture(autouse=True)
def no_ambient_tracking_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose their own store; a user's MLFLOW_TRACKING_URI must not leak in."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
