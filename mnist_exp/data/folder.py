"""The folder format: your own pictures, one sub-folder per class, decoded once into a checked cache.

``root/cat/*.png``, ``root/dog/*.jpg``: class names are the sub-folder names in sorted
order. With ``root/train/<class>/`` and ``root/test/<class>/`` the test pictures are
given; otherwise a seeded ``test_split`` of each class is held out for testing.
Pictures of any size and mode (PNG, JPEG, BMP, WebP) are converted to the configured
channels (1: grayscale, 3: RGB) and resized to the configured height and width.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from pathlib import Path

import numpy as np
from omegaconf import DictConfig
from PIL import Image, UnidentifiedImageError

from mnist_exp.data.formats import DecodedCache, Loaded, Splits, listing, sha256_files
from mnist_exp.data.idx import DataError

log = logging.getLogger(__name__)
RESAMPLING = {m.name.lower(): m for m in Image.Resampling}
SPLIT_FOLDERS = ("train", "test")


def split_roots(root: Path) -> tuple[Path, Path | None]:
    """The training root and the test root (None: hold a split out) of a class-folder tree."""
    if all((root / name).is_dir() for name in SPLIT_FOLDERS):
        return root / "train", root / "test"
    return root, None


def class_folders(path: str) -> list[str]:
    """The class names of a folder dataset: its training root's sub-folders, sorted (a config resolver)."""
    root = Path(os.path.expanduser(path))
    if not root.is_dir():
        raise DataError(f"dataset.path: {root} is not a folder", "point dataset.path at a folder of class folders")
    train_root, _ = split_roots(root)
    names = sorted(entry.name for entry in train_root.iterdir() if entry.is_dir() and not entry.name.startswith("."))
    if len(names) < 2:
        raise DataError(
            f"{train_root}: {len(names)} class folder{'s' if len(names) != 1 else ''} "
            f"({', '.join(names) or 'none'}); a classifier needs at least 2",
            "put each class's pictures in a sub-folder of its own",
        )
    return names


def pictures(folder: Path) -> list[Path]:
    """Every file in a class folder (hidden ones aside), sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


class ImageFolder:
    """The reader of a folder of class folders."""

    def __init__(
        self,
        root: str,
        test_split: float = 0.2,
        split_seed: int = 0,
        resize: str = "bilinear",
        bad_files: str = "refuse",
    ) -> None:
        if resize not in RESAMPLING:
            raise DataError(f"dataset.format.resize: unknown method {resize!r}; choose from {', '.join(RESAMPLING)}")
        if bad_files not in ("refuse", "skip"):
            raise DataError(f"dataset.format.bad_files: {bad_files!r} is neither refuse nor skip")
        if not 0 < test_split < 1:
            raise DataError(f"dataset.format.test_split: {test_split} is not between 0 and 1")
        self.root = Path(os.path.expanduser(root))
        self.test_split, self.split_seed, self.resize, self.bad_files = test_split, split_seed, resize, bad_files

    # What a run reads.

    def load(self, dataset: DictConfig) -> Loaded:
        files = self.files(dataset)
        every = [path for split in files.values() for paths in split.values() for path in paths]
        settings = {
            "image_shape": list(dataset.image_shape),
            "resize": self.resize,
            "bad_files": self.bad_files,
            "test_split": self.test_split,
            "split_seed": self.split_seed,
        }
        cache = DecodedCache(Path(os.path.expanduser(dataset.cache_dir)))
        splits, digest = cache.get(
            dataset.name, listing(every, self.root), settings, lambda: self.decode(dataset, files, settings)
        )
        return Loaded(splits, digest, str(self.root))

    def files(self, dataset: DictConfig) -> dict[str, dict[str, list[Path]]]:
        """split -> class name -> its files; a missing, empty or extra class folder is a DataError."""
        if not self.root.is_dir():
            raise DataError(f"dataset.path: {self.root} is not a folder", "point dataset.path at your class folders")
        train_root, test_root = split_roots(self.root)
        classes = [str(name) for name in dataset.class_names]
        files = {"train": self.class_files(train_root, classes)}
        if test_root is not None:
            files["test"] = self.class_files(test_root, classes, required=False)
        return files

    def class_files(self, root: Path, classes: list[str], required: bool = True) -> dict[str, list[Path]]:
        found = {name: pictures(root / name) for name in classes if (root / name).is_dir()}
        empty = [name for name in classes if required and not found.get(name)]
        if empty:
            raise DataError(
                f"{root}: class folder{'s' if len(empty) > 1 else ''} {', '.join(empty)} "
                f"{'have' if len(empty) > 1 else 'has'} no pictures",
                "add pictures or remove the empty folders",
            )
        extra = sorted(e.name for e in root.iterdir() if e.is_dir() and e.name not in classes)
        if extra:
            raise DataError(f"{root}: folders {', '.join(extra)} are not among the classes {', '.join(classes)}")
        return found

    def decode(
        self, dataset: DictConfig, files: dict[str, dict[str, list[Path]]], settings: dict
    ) -> tuple[Splits, str]:
        """Decode, convert and resize every picture; hold out the test split if there is no test folder."""
        height, width, channels = dataset.image_shape
        classes = [str(name) for name in dataset.class_names]
        converted: Counter[str] = Counter()
        bad: list[str] = []
        decoded: dict[str, tuple[list[np.ndarray], list[int]]] = {}
        for split, by_class in files.items():
            images, labels = [], []
            for label, name in enumerate(classes):
                for path in by_class.get(name, []):
                    try:
                        images.append(self.picture(path, (width, height), channels, converted))
                        labels.append(label)
                    except (UnidentifiedImageError, OSError, ValueError) as exc:
                        bad.append(f"{path.relative_to(self.root)} ({type(exc).__name__})")
            decoded[split] = (images, labels)
        if bad:
            listed = "\n  ".join(bad[:20]) + (f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else "")
            if self.bad_files == "refuse":
                raise DataError(
                    f"{self.root}: {len(bad)} files are not readable pictures:\n  {listed}\n",
                    "remove them, or skip them with dataset.format.bad_files=skip",
                )
            log.warning("%s: skipped %d files that are not readable pictures:\n  %s", dataset.name, len(bad), listed)
        if converted:
            modes = ", ".join(f"{n} from {mode}" for mode, n in sorted(converted.items()))
            log.info("%s: converted pictures to %s: %s", dataset.name, "RGB" if channels == 3 else "grayscale", modes)
        arrays = {
            split: (np.stack(images).astype(np.uint8), np.asarray(labels, np.uint8))
            for split, (images, labels) in decoded.items()
        }
        if "test" not in arrays:
            arrays = self.hold_out(*arrays["train"], len(classes))
        every = [path for split in files.values() for paths in split.values() for path in paths]
        content = sha256_files(every, self.root)
        digest = hashlib.sha256(f"{content} {sorted(settings.items())}".encode()).hexdigest()
        (train_images, train_labels), (test_images, test_labels) = arrays["train"], arrays["test"]
        return Splits(train_images, train_labels, test_images, test_labels), digest

    def picture(self, path: Path, size: tuple[int, int], channels: int, converted: Counter[str]) -> np.ndarray:
        mode = "RGB" if channels == 3 else "L"
        with Image.open(path) as image:
            image.load()
            if image.mode != mode:
                converted[image.mode] += 1
                if image.mode in ("RGBA", "LA", "P", "PA"):  # transparency onto white
                    rgba = image.convert("RGBA")
                    image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
                image = image.convert(mode)
            resized = image.resize(size, RESAMPLING[self.resize]) if image.size != size else image
            array = np.asarray(resized, dtype=np.uint8)
        return array[..., None] if channels == 1 else array

    def hold_out(
        self, images: np.ndarray, labels: np.ndarray, classes: int
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """A seeded test split of each class (at least one picture of each class with two or more)."""
        rng = np.random.default_rng(self.split_seed)
        test: list[int] = []
        for label in range(classes):
            members = rng.permutation(np.flatnonzero(labels == label))
            if len(members) < 2:
                raise DataError(
                    f"{self.root}: class {label} has {len(members)} picture; a test split needs at least 2 per class",
                    "add pictures, or give test pictures in root/test/<class>/",
                )
            test += members[: max(1, round(len(members) * self.test_split))].tolist()
        mask = np.zeros(len(labels), bool)
        mask[test] = True
        return {"train": (images[~mask], labels[~mask]), "test": (images[mask], labels[mask])}

    # What mnist-exp-data says.

    def info(self, dataset: DictConfig) -> list[str]:
        files = self.files(dataset)
        cache = DecodedCache(Path(os.path.expanduser(dataset.cache_dir)))
        state = cache.state()
        every = [path for split in files.values() for paths in split.values() for path in paths]
        fresh = state.get("files") == listing(every, self.root)
        lines = [f"folder: {self.root}"]
        for split, by_class in files.items():
            counts = ", ".join(f"{name} {len(paths)}" for name, paths in by_class.items())
            lines.append(f"{split}: {counts}")
        if "test" not in files:
            lines.append(f"test: {self.test_split:.0%} of each class held out (seed {self.split_seed})")
        lines.append(
            f"cache: {cache.arrays} "
            + (f"up to date, digest {state['digest']}" if fresh else "stale" if state else "not built yet")
        )
        return lines

    def verify(self, dataset: DictConfig) -> list[str]:
        try:
            files = self.files(dataset)
            bad = []
            for by_class in files.values():
                for paths in by_class.values():
                    for path in paths:
                        try:
                            with Image.open(path) as image:
                                image.verify()
                        except (UnidentifiedImageError, OSError) as exc:
                            bad.append(f"{path}: not a readable picture ({type(exc).__name__})")
            return bad
        except DataError as exc:
            return [str(exc)]
