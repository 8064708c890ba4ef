"""Where a benchmark ran: the CPU, its flags of interest, the cores, and its fp32 matmul rate measured now.

Every figure in RESULTS.md is true of one machine only: bfloat16 is native on
AVX512_BF16 and AMX CPUs and emulated (about 8x slower than float32) on AVX2-only
ones, so each benchmark appends its results under a heading naming the machine.

To measure as an AVX2-only CPU on a newer one, cap the instruction sets that
TensorFlow's and PyTorch's kernels use: ``ONEDNN_MAX_CPU_ISA=AVX2
ATEN_CPU_CAPABILITY=avx2`` (the heading then names the cap, and
``training.precision=auto`` picks float32 as on such a CPU).
"""

from __future__ import annotations

import os
import platform
import time
from contextlib import suppress
from importlib.metadata import PackageNotFoundError, version

from mnist_exp.plan import this_machine as plan_machine

# Environment variables that change which kernels run, named with every figure.
SPEED_SETTINGS = ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    """The best fp32 matmul rate TensorFlow reaches here (GFLOP/s), over ``repeats`` n x n products."""
    import tensorflow as tf

    a = tf.random.uniform((n, n), dtype=tf.float32)
    b = tf.random.uniform((n, n), dtype=tf.float32)
    (a @ b).numpy()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        (a @ b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def versions() -> str:
    found = []
    for name in ("tensorflow-cpu", "keras", "torch", "mlflow", "hydra-core"):
        with suppress(PackageNotFoundError):
            found.append(f"{name} {version(name)}")
    return ", ".join(found)


def heading(title: str, gflops: float) -> list[str]:
    """A section heading naming the machine, and a line with what else the figures depend on."""
    settings = ", ".join(f"{name}={os.environ.get(name, 'unset')}" for name in SPEED_SETTINGS)
    return [
        "",
        f"## {title}: {plan_machine().describe()}",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M')}; fp32 matmul rate {gflops:.0f} GFLOP/s (TensorFlow, "
        f"2048x2048, best of 10, same session); Python {platform.python_version()}; {versions()}; {settings}.",
        "",
    ]


def training_flops_per_image(model) -> float:
    """FLOPs of one training step per image: forward (2 per multiply-add) plus backward (twice the forward)."""
    forward = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            kernel = layer.kernel.shape  # (kh, kw, in, out)
            _, height, width, _ = layer.output.shape
            forward += 2 * height * width * kernel[0] * kernel[1] * kernel[2] * kernel[3]
        elif kind == "Dense":
            forward += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
    return 3.0 * forward
