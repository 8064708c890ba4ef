"""Read, check and write IDX files, the canonical on-disk form of MNIST-style data.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the values. Only unsigned
bytes (type code 0x08) are used by these datasets.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_exp.errors import UserError

UBYTE = 0x08


class DataError(UserError):
    """A dataset file is missing, damaged or not what the config says it is.

    ``reason`` says what is wrong; the message adds ``fix``, the command that repairs it.
    """

    def __init__(self, reason: str, fix: str | None = None) -> None:
        super().__init__(f"{reason}. Fix: {fix}" if fix else reason)
        self.reason = reason


@dataclass(frozen=True)
class FileSpec:
    """What one IDX file must be: its name, sha256 of the uncompressed bytes, shape."""

    filename: str
    sha256: str
    shape: tuple[int, ...]


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of a byte string."""
    return hashlib.sha256(data).hexdigest()


def raw_bytes(path: Path) -> bytes:
    """The uncompressed bytes of an IDX file (``.gz`` is decompressed)."""
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as f:
            return f.read()
    return path.read_bytes()


def encode(array: np.ndarray) -> bytes:
    """The IDX bytes of a uint8 array."""
    if array.dtype != np.uint8:
        raise ValueError(f"IDX writer takes uint8 arrays, got {array.dtype}")
    header = bytes([0, 0, UBYTE, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def decode(data: bytes, spec: FileSpec, path: Path, fix: str) -> np.ndarray:
    """Parse IDX bytes, checking magic number, dimensions, size and sha256.

    Every error names the file, what was expected, what was found, and ``fix``,
    the command that repairs it.
    """

    def fail(what: str) -> DataError:
        return DataError(f"{path}: {what}", fix)

    ndim = len(spec.shape)
    magic = bytes([0, 0, UBYTE, ndim])
    if len(data) < 4 or data[:4] != magic:
        raise fail(f"wrong magic number: expected {magic.hex()}, found {data[:4].hex() or 'nothing'}")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise fail(f"truncated header: expected {header_size} bytes, found {len(data)}")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if shape != spec.shape:
        raise fail(f"wrong dimensions: expected {spec.shape}, found {shape}")
    expected_size = header_size + int(np.prod(shape))
    if len(data) != expected_size:
        raise fail(f"wrong size (truncated or padded): expected {expected_size} bytes, found {len(data)}")
    digest = sha256_bytes(data)
    if digest != spec.sha256:
        raise fail(f"sha256 mismatch: expected {spec.sha256}, found {digest}")
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape)


def find(folder: Path, filename: str) -> Path | None:
    """The file in ``folder``, plain or gzipped, or None if neither is there."""
    for candidate in (folder / filename, folder / f"{filename}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read(folder: Path, spec: FileSpec, fix: str) -> np.ndarray:
    """Read and fully check one IDX file from ``folder``."""
    path = find(folder, spec.filename)
    if path is None:
        raise DataError(f"{folder / spec.filename}: file is missing", fix)
    try:
        data = raw_bytes(path)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot be read ({exc})", fix) from exc
    return decode(data, spec, path, fix)
