"""What every dataset format provides, and the decoded cache the slow formats share.

A dataset config names its reader in ``format`` (``_target_`` and the format's own
settings). A reader has three methods, each given the whole ``dataset`` config node:

- ``load(dataset) -> Loaded``: the uint8 arrays, their digest and where they came from;
- ``info(dataset) -> list[str]``: lines that describe where the data lives and its state;
- ``verify(dataset) -> list[str]``: the problems found (none: it loads as configured).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig

from mnist_exp.data.idx import DataError

log = logging.getLogger(__name__)
ARRAYS = ("train_images", "train_labels", "test_images", "test_labels")


@dataclass(frozen=True)
class Splits:
    """A dataset's uint8 images (N, H, W[, C]) and integer labels, training and test."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


@dataclass(frozen=True)
class Loaded:
    """A dataset as a run uses it: its arrays, one sha256 of their content, and where they came from."""

    splits: Splits
    digest: str
    source: str


class Format(Protocol):
    def load(self, dataset: DictConfig) -> Loaded: ...
    def info(self, dataset: DictConfig) -> list[str]: ...
    def verify(self, dataset: DictConfig) -> list[str]: ...


def reader(dataset: DictConfig) -> Format:
    """The dataset's reader, built from its ``format`` node."""
    return instantiate(dataset.format)


def load(dataset: DictConfig) -> Loaded:
    """The dataset's arrays, checked against its config (image shape, classes)."""
    loaded = reader(dataset).load(dataset)
    check_arrays(loaded.splits, dataset)
    return loaded


def load_problems(reader: Format, dataset: DictConfig) -> list[str]:
    """A reader's ``verify`` by loading: the DataError that stops it, if any."""
    try:
        reader.load(dataset)
    except DataError as exc:
        return [str(exc)]
    return []


def check_arrays(splits: Splits, dataset: DictConfig) -> None:
    """Images of the configured shape and labels within ``num_classes``, every class in the test set."""
    shape, classes = tuple(dataset.image_shape), dataset.num_classes
    for split in ("train", "test"):
        images, labels = getattr(splits, f"{split}_images"), getattr(splits, f"{split}_labels")
        got = images.shape[1:] if images.ndim == 4 else (*images.shape[1:], 1)
        if got != shape:
            raise DataError(
                f"{dataset.name}: {split} images are {got}, not dataset.image_shape={list(shape)}",
                f"set dataset.image_shape={list(got)}",
            )
        if len(labels) and (labels.min() < 0 or labels.max() >= classes):
            raise DataError(
                f"{dataset.name}: {split} labels run from {labels.min()} to {labels.max()}, "
                f"outside 0..{classes - 1} (dataset.num_classes={classes})",
                f"set dataset.num_classes={int(labels.max()) + 1} or fix the labels",
            )
    missing = sorted(set(range(classes)) - set(np.unique(splits.test_labels).tolist()))
    if missing:
        names = [str(dataset.class_names[i]) for i in missing]
        raise DataError(
            f"{dataset.name}: the test set has no image of class {', '.join(names)}",
            "add test pictures of every class, or let mnist-exp hold out a test split",
        )


def sha256_files(paths: Iterable[Path], root: Path) -> str:
    """One sha256 over the relative names and bytes of ``paths``."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def listing(paths: Iterable[Path], root: Path) -> dict[str, list[int]]:
    """Each file's size and modification time: what changes when a file is added, removed, edited or touched."""
    return {p.relative_to(root).as_posix(): [(s := p.stat()).st_size, s.st_mtime_ns] for p in paths}


def what_changed(before: dict[str, list[int]], now: dict[str, list[int]]) -> str:
    """The difference between two listings, in words."""
    added, removed = sorted(now.keys() - before.keys()), sorted(before.keys() - now.keys())
    changed = sorted(k for k in now.keys() & before.keys() if now[k] != before[k])
    parts = [
        f"{len(files)} {word} ({', '.join(files[:3])}{', ...' if len(files) > 3 else ''})"
        for files, word in ((added, "added"), (removed, "removed"), (changed, "changed"))
        if files
    ]
    return "; ".join(parts) or "the settings changed"


class DecodedCache:
    """Decoded uint8 arrays in ``folder``, valid while their source files and settings stay as they were.

    ``decoded.npz`` holds the arrays; ``decoded.json`` the source listing, the settings
    and the content digest. Both are replaced atomically.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.arrays, self.manifest = folder / "decoded.npz", folder / "decoded.json"

    def state(self) -> dict[str, Any]:
        return json.loads(self.manifest.read_text()) if self.manifest.is_file() and self.arrays.is_file() else {}

    def get(
        self,
        name: str,
        files: dict[str, list[int]],
        settings: dict[str, Any],
        decode: Callable[[], tuple[Splits, str]],
    ) -> tuple[Splits, str]:
        """The cached arrays and digest if ``files`` and ``settings`` match; else ``decode()`` and cache it."""
        state = self.state()
        if state.get("files") == files and state.get("settings") == settings:
            with np.load(self.arrays) as stored:
                return Splits(**{key: stored[key] for key in ARRAYS}), state["digest"]
        why = what_changed(state["files"], files) if state else "no cache yet"
        log.info("%s: decoding into the cache %s (%s)", name, self.folder, why)
        splits, digest = decode()
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.arrays.with_name(".decoded.tmp.npz")
        np.savez(partial, **{key: getattr(splits, key) for key in ARRAYS})
        os.replace(partial, self.arrays)
        record = {"files": files, "settings": settings, "digest": digest}
        self.manifest.with_suffix(".tmp").write_text(json.dumps(record))
        os.replace(self.manifest.with_suffix(".tmp"), self.manifest)
        return splits, digest
