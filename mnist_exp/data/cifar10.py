"""The CIFAR-10 format: the official ``cifar-10-python.tar.gz``, decoded once into a checked cache.

The archive holds ``cifar-10-batches-py/data_batch_1`` to ``_5`` and ``test_batch``,
each a pickled dict with ``data`` (N x 3072 uint8, the red, green then blue planes of
32 x 32 pictures) and ``labels``. On a connected machine the archive is downloaded
from the official address and checked against its published MD5; offline, point
``dataset.archive`` at a copy.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import tarfile
from pathlib import Path
from typing import ClassVar

import numpy as np
from omegaconf import DictConfig

from mnist_exp.data.formats import DecodedCache, Loaded, Splits, listing, load_problems
from mnist_exp.data.idx import DataError
from mnist_exp.data.sources import SourceError, _NumpyOnlyUnpickler, download

log = logging.getLogger(__name__)
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"


def md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class BatchUnpickler(_NumpyOnlyUnpickler):
    """NumPy arrays, and the byte strings a protocol-2 pickle spells through ``_codecs.encode``."""

    allowed: ClassVar[set[tuple[str, str]]] = _NumpyOnlyUnpickler.allowed | {("_codecs", "encode")}


def read_batch(archive: tarfile.TarFile, name: str) -> tuple[np.ndarray, np.ndarray]:
    """One batch's pictures as (N, 32, 32, 3) uint8 and its labels."""
    member = archive.extractfile(f"{FOLDER}/{name}")
    if member is None:
        raise KeyError(name)
    batch = BatchUnpickler(member, encoding="bytes").load()
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), np.asarray(batch[b"labels"], dtype=np.uint8)


class Cifar10Archive:
    """The reader of the CIFAR-10 python archive."""

    def __init__(self, archive: str | None, url: str, md5: str, timeout_s: float = 60.0) -> None:
        self.given = Path(os.path.expanduser(archive)) if archive else None
        self.url, self.md5, self.timeout_s = url, md5, timeout_s

    def archive_path(self, dataset: DictConfig) -> Path:
        """The archive to read: the one given, else the cached download (fetched and checked now if missing)."""
        if self.given is not None:
            if not self.given.is_file():
                raise DataError(f"dataset.archive: no file {self.given}", f"download {self.url} and point to it")
            return self.given
        cache = Path(os.path.expanduser(dataset.cache_dir))
        path = cache / Path(self.url).name
        if not path.is_file():
            cache.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.part")
            try:
                download(self.url, partial, self.timeout_s)
            except SourceError as exc:
                raise DataError(
                    f"{dataset.name}: {exc}", "on a machine without internet, copy it and set dataset.archive=FILE"
                ) from exc
            if (got := md5(partial)) != self.md5:
                partial.unlink()
                raise DataError(f"{self.url}: MD5 {got}, not the published {self.md5}", "download it again")
            partial.replace(path)
        return path

    def load(self, dataset: DictConfig) -> Loaded:
        path = self.archive_path(dataset)
        cache = DecodedCache(Path(os.path.expanduser(dataset.cache_dir)))
        splits, digest = cache.get(dataset.name, listing([path], path.parent), {}, lambda: self.decode(path))
        return Loaded(splits, digest, str(path))

    def decode(self, path: Path) -> tuple[Splits, str]:
        checksum = md5(path)
        if checksum != self.md5:
            log.warning(
                "%s is not the official archive (MD5 %s, published %s): used as given", path, checksum, self.md5
            )
        try:
            with tarfile.open(path, "r:gz") as archive:
                train = [read_batch(archive, name) for name in TRAIN_BATCHES]
                test_images, test_labels = read_batch(archive, TEST_BATCH)
        except (tarfile.TarError, OSError, KeyError, pickle.UnpicklingError, EOFError) as exc:
            raise DataError(
                f"{path}: not a CIFAR-10 python archive ({type(exc).__name__}: {exc})",
                f"download {self.url} again",
            ) from exc
        splits = Splits(
            np.concatenate([images for images, _ in train]),
            np.concatenate([labels for _, labels in train]),
            test_images,
            test_labels,
        )
        return splits, hashlib.sha256(path.read_bytes()).hexdigest()

    def info(self, dataset: DictConfig) -> list[str]:
        path = self.given or Path(os.path.expanduser(dataset.cache_dir)) / Path(self.url).name
        state = DecodedCache(Path(os.path.expanduser(dataset.cache_dir))).state()
        present = path.is_file()
        return [
            f"archive: {path} ({'present' if present else 'missing'}), from {self.url} (MD5 {self.md5})",
            f"cache: {'digest ' + state['digest'] if state else 'not built yet'}",
        ]

    def verify(self, dataset: DictConfig) -> list[str]:
        return load_problems(self, dataset)
