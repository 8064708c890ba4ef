"""One GPU per worker process: ``launcher=local_parallel`` on a machine with several GPUs.

Each worker claims the first GPU no other worker holds, with a lock on a file per GPU that
lasts as long as the worker, and sees that GPU alone (``CUDA_VISIBLE_DEVICES``) from then on.
It must claim before TensorFlow starts: a worker keeps the devices it started with.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import tempfile
from pathlib import Path
from typing import IO

VISIBLE_ENV = "CUDA_VISIBLE_DEVICES"
_held: list[IO[bytes]] = []  # this process's lock: open as long as the process lives


def machine_gpus() -> list[str]:
    """The NVIDIA GPUs' indices, from ``nvidia-smi`` (none where it is missing or fails)."""
    try:
        result = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return []
    return result.stdout.split() if result.returncode == 0 else []


def claim(devices: list[str], folder: Path) -> str | None:
    """Lock the first of ``devices`` that no other live process holds; its id (None if all are held or none exist)."""
    if _held:
        return Path(_held[0].name).stem
    folder.mkdir(parents=True, exist_ok=True)
    for device in devices:
        handle = (folder / f"{device}.lock").open("wb")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _held.append(handle)
        return device
    return None


def one_gpu_per_worker(sweep_id: str) -> str | None:
    """In a sweep's worker process, see one GPU of the machine's, unless the user chose devices already."""
    if VISIBLE_ENV in os.environ:
        return None
    devices = machine_gpus()
    if not devices:
        return None
    device = claim(devices, Path(tempfile.gettempdir()) / f"mnist-exp-gpus-{sweep_id}")
    if device is not None:
        os.environ[VISIBLE_ENV] = device
    return device
