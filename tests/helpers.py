"""What the tests share: synthetic data in the real formats, processes to start, stores to read.

Test modules import from here (``from helpers import FAST, launch``); ``conftest.py`` holds the fixtures.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from omegaconf import DictConfig
from PIL import Image, ImageDraw, ImageFont

from mnist_exp.data import idx
from mnist_exp.images import normalize

FILENAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def render_digit(digit: int, size: int = 56, angle: float = 0.0, dark_on_light: bool = False) -> Image.Image:
    """A digit drawn with Pillow's built-in font on a square canvas, as a user's picture might be."""
    background, ink = (255, 0) if dark_on_light else (0, 255)
    image = Image.new("L", (size, size), background)
    font = ImageFont.load_default(size=int(size * 0.7))
    ImageDraw.Draw(image).text((size / 2, size / 2), str(digit), fill=ink, font=font, anchor="mm")
    return image.rotate(angle, fillcolor=background) if angle else image


def synthetic_arrays(n_train: int, n_test: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Font-drawn digits, slightly rotated and noisy, prepared the MNIST way (20x20 box, centred by mass)."""
    rng = np.random.default_rng(seed)

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = (np.arange(n) % 10).astype(np.uint8)
        rng.shuffle(labels)
        images = np.empty((n, 28, 28), dtype=np.uint8)
        for i, label in enumerate(labels):
            drawn = render_digit(int(label), angle=float(rng.uniform(-12, 12)))
            pixels = normalize(np.asarray(drawn, dtype=np.float32) / 255.0) * 255
            images[i] = np.clip(pixels + rng.normal(0, 12, pixels.shape), 0, 255).astype(np.uint8)
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


# Small batches, few calls into TensorFlow, no model logging: the overrides of the tests' quick runs.
FAST = ["training.batch_size=32", "training.steps_per_execution=4", "tracking.log_model=false"]


ONE_EPOCH = [*FAST, "training.epochs=1"]


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_module(cwd: Path, module: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m module args`` in ``cwd``; asserts it exited 0, showing the end of its output if not."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


def interruptible() -> None:
    """In a child about to start: let Ctrl-C (SIGINT) reach it.

    A test run started in the background (``cmd &`` in a script) ignores SIGINT,
    and its children would inherit that.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def launch(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``python -m args`` in ``cwd``, its output merged into one unbuffered text pipe, Ctrl-C reaching it."""
    return subprocess.Popen(
        [sys.executable, "-m", *args],
        cwd=cwd,
        # mlflow.set_tracking_uri in this process sets MLFLOW_TRACKING_URI: the child must not inherit it
        env={k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        | {"PYTHONUNBUFFERED": "1"}
        | (env or {}),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=interruptible,
    )


def runs_in(store: Path) -> list:
    """Every run in the SQLite store under ``store`` (none if there is no store yet).

    Opened under the store's creation lock: a process may be creating it at this moment.
    """
    from mnist_exp.tracking.store import open_store

    database = store / "mlflow.db"
    if not database.exists():
        return []
    client = open_store(f"sqlite:///{database}")
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


@contextlib.contextmanager
def serving(command: list[str], port: int) -> Iterator[str]:
    """Run an mnist-exp server command; yield the line with its address; stop it with Ctrl-C.

    On the way out it checks that the server exited cleanly and no longer answers.
    """
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, preexec_fn=interruptible
    )
    try:
        banner = [process.stdout.readline(), process.stdout.readline()]
        assert f"http://127.0.0.1:{port}" in banner[1], banner
        yield banner[1].strip()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.terminate()  # its SIGTERM handler stops the server it started
            process.wait(timeout=30)
            raise
        assert code == 0
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, "the server still answers after Ctrl-C"


def server_command(port: int, backend_store_uri: str, artifacts: Path) -> list[str]:
    """``mnist-exp-server`` on loopback ``port``, one worker, with its backend and served artifacts."""
    return [
        str(Path(sys.executable).parent / "mnist-exp-server"),
        f"port={port}",
        f"backend_store_uri={backend_store_uri}",
        f"artifacts_destination={artifacts}",
        "workers=1",
    ]


PG_BINS = sorted(Path("/usr/lib/postgresql").glob("*/bin"))


# Three classes of colour pictures a small CNN tells apart: a red disc, a green square, a blue bar.
SHAPES = {"bar": (40, 60, 220), "disc": (220, 40, 40), "square": (40, 200, 60)}


FORMATS = [("PNG", ".png", "RGB"), ("JPEG", ".jpg", "RGB"), ("BMP", ".bmp", "RGB"), ("WEBP", ".webp", "RGB"),
           ("PNG", ".png", "RGBA"), ("PNG", ".png", "P"), ("PNG", ".png", "L")]  # fmt: skip


def draw_shape(kind: str, size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """One picture of ``kind`` on a noisy grey background, placed and sized at random."""
    width, height = size
    background = rng.integers(90, 160, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(background, "RGB")
    draw = ImageDraw.Draw(image)
    side = int(min(size) * rng.uniform(0.4, 0.7))
    left, top = int(rng.integers(0, width - side)), int(rng.integers(0, height - side))
    colour = tuple(int(c + rng.integers(-25, 25)) for c in SHAPES[kind])
    if kind == "disc":
        draw.ellipse((left, top, left + side, top + side), fill=colour)
    elif kind == "square":
        draw.rectangle((left, top, left + side, top + side), fill=colour)
    else:
        draw.rectangle((left, top + side // 3, left + side, top + 2 * side // 3), fill=colour)
    return image


def write_pictures(folder: Path, per_class: int, seed: int = 0) -> list[Path]:
    """``folder/<class>/<n>.<ext>``: pictures of different sizes, formats and modes; returns the files."""
    rng = np.random.default_rng(seed)
    written = []
    for kind in SHAPES:
        (folder / kind).mkdir(parents=True, exist_ok=True)
        for n in range(per_class):
            fmt, ext, mode = FORMATS[n % len(FORMATS)]
            image = draw_shape(kind, (int(rng.integers(24, 64)), int(rng.integers(24, 64))), rng)
            image = image.convert(mode) if mode != "P" else image.quantize(64)
            path = folder / kind / f"{n:03d}{ext}"
            image.save(path, fmt)
            written.append(path)
    return written


@contextlib.contextmanager
def as_hydra_job(overrides: list[str], multirun: bool = False) -> Iterator[DictConfig]:
    """The config of a Hydra job started with ``overrides``, with Hydra's job state set as ``@hydra.main`` sets it."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from mnist_exp.config import compose

    full = compose(overrides, return_hydra_config=True)
    if multirun:  # as a launcher sets up its first job
        with open_dict(full):
            full.hydra.mode = "MULTIRUN"
            full.hydra.job.num = 0
    HydraConfig.instance().set_config(full)
    try:
        yield compose(overrides)
    finally:
        HydraConfig.instance().cfg = None
