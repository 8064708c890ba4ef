"""The IDX format: MNIST-style datasets as four verified IDX files in a cache, filled from the configured sources."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig

from mnist_exp.data import idx
from mnist_exp.data.formats import Loaded, Splits
from mnist_exp.data.idx import DataError, FileSpec
from mnist_exp.data.sources import SourceError

ROLES = ("train_images", "train_labels", "test_images", "test_labels")
PROVENANCE = "source.json"


@dataclass(frozen=True)
class DatasetFiles:
    """Where a dataset lives and what each of its four files must be."""

    name: str
    cache_dir: Path
    files: dict[str, FileSpec]

    @classmethod
    def from_config(cls, cfg: DictConfig) -> DatasetFiles:
        height, width = cfg.image_shape[0], cfg.image_shape[1]
        sizes = {"train": cfg.train_size, "test": cfg.test_size}
        files = {}
        for role in ROLES:
            split, kind = role.split("_")
            shape = (sizes[split], height, width) if kind == "images" else (sizes[split],)
            entry = cfg.files[role]
            files[role] = FileSpec(entry.filename, entry.sha256, shape)
        return cls(cfg.name, Path(os.path.expanduser(cfg.cache_dir)), files)

    @property
    def fix(self) -> str:
        """The command that repairs this dataset's cache."""
        return f"mnist-exp-data pull {self.name} --cache-dir {self.cache_dir}"

    @property
    def digest(self) -> str:
        """One sha256 for the whole dataset, over its four file digests."""
        return idx.sha256_bytes(" ".join(self.files[r].sha256 for r in ROLES).encode())

    def present(self) -> list[Path]:
        """The dataset's files that exist in the cache, plain or gzipped."""
        return [p for spec in self.files.values() if (p := idx.find(self.cache_dir, spec.filename))]

    def read(self, folder: Path | None = None) -> Splits:
        """Read and check all four files; raise DataError naming the first bad one."""
        folder = folder or self.cache_dir
        return Splits(**{role: idx.read(folder, spec, self.fix) for role, spec in self.files.items()})

    def provenance(self) -> dict[str, Any]:
        """What ``pull`` recorded about where the cached files came from."""
        path = self.cache_dir / PROVENANCE
        return json.loads(path.read_text()) if path.is_file() else {}


def _install(dataset: DatasetFiles, splits: Splits, source: str) -> None:
    """Write verified arrays into the cache as plain IDX files, each replaced atomically."""
    dataset.cache_dir.mkdir(parents=True, exist_ok=True)
    for role, spec in dataset.files.items():
        target = dataset.cache_dir / spec.filename
        tmp = target.with_name(f".{spec.filename}.tmp")
        tmp.write_bytes(idx.encode(getattr(splits, role)))
        os.replace(tmp, target)
        stale = target.with_name(f"{spec.filename}.gz")
        if stale.exists():
            stale.unlink()
    record = {"source": source, "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    (dataset.cache_dir / PROVENANCE).write_text(json.dumps(record, indent=2) + "\n")


def pull(cfg: DictConfig, log=print) -> Splits:
    """Return the dataset's verified arrays, fetching from the sources if the cache fails.

    Sources are tried in order; each failure is reported and the next is tried.
    When all fail, the error lists every source and why it failed.
    """
    dataset = DatasetFiles.from_config(cfg)
    try:
        return dataset.read()
    except DataError as exc:
        reasons = [f"cache {dataset.cache_dir}: {exc.reason}"]
    filenames = {role: spec.filename for role, spec in dataset.files.items()}
    dataset.cache_dir.parent.mkdir(parents=True, exist_ok=True)
    for source_cfg in cfg.sources:
        source = instantiate(source_cfg)
        log(f"{dataset.name}: fetching from {source.name}")
        with tempfile.TemporaryDirectory(prefix=f".{dataset.name}-", dir=dataset.cache_dir.parent) as tmp:
            try:
                source.fetch(Path(tmp), filenames)
                splits = dataset.read(Path(tmp))
            except (SourceError, DataError) as exc:
                reason = exc.reason if isinstance(exc, DataError) else str(exc)
                log(f"{dataset.name}: {source.name} failed: {reason}", file=sys.stderr)
                reasons.append(f"{source.name}: {reason}")
                continue
        _install(dataset, splits, source.name)
        log(f"{dataset.name}: verified and cached in {dataset.cache_dir}")
        return splits
    raise DataError(f"{dataset.name}: no source delivered verified files. Tried:\n  - " + "\n  - ".join(reasons))


def load(cfg: DictConfig) -> Splits:
    """The dataset for training: provision an empty cache, refuse a damaged one."""
    dataset = DatasetFiles.from_config(cfg)
    if not dataset.present():
        return pull(cfg)
    return dataset.read()


class IdxFormat:
    """The reader of IDX datasets (MNIST, Fashion-MNIST): ``files`` with their sha256, ``sources`` to fetch from."""

    def load(self, dataset: DictConfig) -> Loaded:
        files = DatasetFiles.from_config(dataset)
        return Loaded(load(dataset), files.digest, str(files.cache_dir))

    def info(self, dataset: DictConfig) -> list[str]:
        files = DatasetFiles.from_config(dataset)
        source = files.provenance()
        lines = [
            f"source: {source.get('source', 'not pulled')}  {source.get('fetched_at', '')}",
            f"dataset digest: {files.digest}",
        ]
        for spec in files.files.values():
            path = idx.find(files.cache_dir, spec.filename)
            size = f"{path.stat().st_size:>10,d} B" if path else "   missing"
            lines.append(f"{spec.filename:<26} {size}  sha256 {spec.sha256}")
        return lines

    def verify(self, dataset: DictConfig) -> list[str]:
        files = DatasetFiles.from_config(dataset)
        problems = []
        for spec in files.files.values():
            try:
                idx.read(files.cache_dir, spec, files.fix)
            except DataError as exc:
                problems.append(str(exc))
        return problems
