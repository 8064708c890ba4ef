"""How a job uses the machine it runs on: precision, threads, batch shards and XLA, decided from its facts.

The decisions are pure functions of a ``Machine`` (CPU flags, usable cores, GPU
compute capability), so they are tested for machines the tests do not run on.

- Precision ``auto``: bfloat16 compute only where the hardware does it natively
  (a CPU with AVX512_BF16 or AMX; a GPU of compute capability 8.0 or newer);
  float16 on GPUs of compute capability 7.x (Tensor Cores, with loss scaling);
  float32 elsewhere. Emulated bfloat16 (an AVX2-only CPU) is far slower than float32
  (``benchmarks/precision.py``).
- Threads and batch shards: on a CPU, one batch part per usable core, each part
  on its own thread (1 core: no split); on a GPU, or with BatchNormalization,
  one part. ``training.threads``, when set, stands for the cores.
- XLA: on a GPU only (Keras's own rule for ``jit_compile="auto"``), stated here.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import keras
from hydra.utils import get_class
from omegaconf import DictConfig

from mnist_exp.schema import ConfigError

log = logging.getLogger(__name__)

# CPU features that decide precision, as /proc/cpuinfo names them.
CPU_FEATURES = {"avx2": "AVX2", "avx512f": "AVX512F", "avx512_bf16": "AVX512_BF16", "amx_bf16": "AMX"}
BF16_EMULATION_SLOWDOWN = 8  # measured: bfloat16 on an AVX2-only CPU against float32
# oneDNN's instruction-set levels, lowest first, as its ONEDNN_MAX_CPU_ISA setting names them, and
# the lowest level at which it computes with each bfloat16 feature: a lower cap emulates bfloat16.
ONEDNN_ISA_LEVELS = (
    "SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI", "AVX512_CORE_BF16",
    "AVX10_1_512", "AVX512_CORE_FP16", "AVX10_1_512_AMX", "AVX512_CORE_AMX", "AVX10_1_512_AMX_FP16",
    "AVX512_CORE_AMX_FP16",
)  # fmt: skip
BF16_ISA_LEVEL = {"avx512_bf16": "AVX512_CORE_BF16", "amx_bf16": "AVX10_1_512_AMX"}
ISA_LIMIT_VARIABLE = "ONEDNN_MAX_CPU_ISA"


@dataclass(frozen=True)
class Machine:
    """What a plan depends on: the CPU's model and flags, the usable cores, the GPU if any."""

    cpu_model: str
    cpu_flags: frozenset[str]
    cores: int
    gpu: str | None = None
    gpu_compute_capability: tuple[int, int] | None = None
    isa_limit: str | None = None  # ONEDNN_MAX_CPU_ISA: the highest instruction set oneDNN may use

    def usable(self, flag: str) -> bool:
        """Whether the CPU has the bfloat16 feature ``flag`` and oneDNN's instruction-set cap lets it use it."""
        if flag not in self.cpu_flags:
            return False
        if self.isa_limit is None or self.isa_limit not in ONEDNN_ISA_LEVELS:  # ALL, DEFAULT: no cap
            return True
        return ONEDNN_ISA_LEVELS.index(self.isa_limit) >= ONEDNN_ISA_LEVELS.index(BF16_ISA_LEVEL[flag])

    @property
    def features(self) -> list[str]:
        """The CPU features of interest it has, by their usual names (AVX2, AVX512F, AVX512_BF16, AMX)."""
        return [name for flag, name in CPU_FEATURES.items() if flag in self.cpu_flags]

    @property
    def native_bfloat16(self) -> str | None:
        """The feature that computes bfloat16 natively, or None where it is emulated."""
        if self.gpu_compute_capability is not None:
            major, minor = self.gpu_compute_capability
            return f"GPU compute capability {major}.{minor}" if major >= 8 else None
        for flag in ("amx_bf16", "avx512_bf16"):
            if self.usable(flag):
                return CPU_FEATURES[flag]
        return None

    def describe(self) -> str:
        gpu = f", GPU {self.gpu} (compute capability {self.gpu_compute_capability})" if self.gpu else ""
        limit = f", oneDNN limited to {self.isa_limit} ({ISA_LIMIT_VARIABLE})" if self.isa_limit else ""
        return f"{self.cpu_model}, {self.cores} cores, {' '.join(self.features) or 'no AVX2'}{limit}{gpu}"


def cpu_info(path: Path = Path("/proc/cpuinfo")) -> tuple[str, frozenset[str]]:
    """The CPU's model name and flags, from /proc/cpuinfo (empty where there is none)."""
    text = path.read_text() if path.is_file() else ""
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    flags = re.search(r"^flags\s*:\s*(.+)$", text, re.MULTILINE)
    return (model.group(1).strip() if model else "unknown CPU"), frozenset(flags.group(1).split() if flags else ())


def this_machine() -> Machine:
    """The facts of the machine this process runs on (TensorFlow tells the GPU)."""
    import tensorflow as tf

    model, flags = cpu_info()
    gpus = tf.config.list_physical_devices("GPU")
    name, capability = None, None
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        name, capability = details.get("device_name", "GPU"), details.get("compute_capability")
    limit = os.environ.get(ISA_LIMIT_VARIABLE, "").upper() or None
    cores = len(os.sched_getaffinity(0))
    return Machine(model, flags, cores, name, tuple(capability) if capability else None, limit)


@dataclass(frozen=True)
class Plan:
    """How a job computes: its Keras dtype policy and why, batch parts, TensorFlow threads (0: default), XLA."""

    precision: str
    precision_reason: str
    shards: int
    intra_op_threads: int
    inter_op_threads: int
    xla: bool
    warning: str | None = None


def choose_precision(requested: str, machine: Machine) -> tuple[str, str, str | None]:
    """The Keras dtype policy for ``training.precision``, the reason, and a warning for a slow choice."""
    native = machine.native_bfloat16
    if requested == "auto":
        if native:
            return "mixed_bfloat16", f"bfloat16 is native here ({native})", None
        if machine.gpu_compute_capability is not None:
            major, minor = machine.gpu_compute_capability
            if major >= 7:
                return "mixed_float16", f"float16 Tensor Cores (GPU compute capability {major}.{minor})", None
            return "float32", f"no Tensor Cores (GPU compute capability {major}.{minor})", None
        capped = [CPU_FEATURES[flag] for flag in BF16_ISA_LEVEL if flag in machine.cpu_flags]
        if capped:  # the CPU has it, oneDNN may not use it
            why = f"{' and '.join(capped)} unused: {ISA_LIMIT_VARIABLE}={machine.isa_limit}"
            return "float32", f"no native bfloat16 ({why})", None
        found = ", ".join(machine.features) or "no AVX2"
        return "float32", f"no native bfloat16 (no AVX512_BF16 or AMX; found {found})", None
    warning = None
    if requested == "mixed_bfloat16" and not native:
        warning = (
            "training.precision=mixed_bfloat16 on hardware without native bfloat16 (no usable AVX512_BF16, AMX or "
            f"GPU of compute capability 8.0+): it is emulated, expect training about {BF16_EMULATION_SLOWDOWN}x slower "
            "than float32. Fix: training.precision=auto"
        )
    return requested, "set in training.precision", warning


def batch_statistics_layers(model_cfg: DictConfig) -> list[str]:
    """The model's layers whose output depends on the other images in the batch (BatchNormalization)."""
    found = []
    for name, spec in model_cfg.layers.items():
        if spec is None:  # left out
            continue
        try:
            if issubclass(get_class(spec._target_), keras.layers.BatchNormalization):
                found.append(name)
        except (ImportError, ValueError, TypeError):  # not a class: building the layer reports it
            pass
    return found


def plan(training_cfg: DictConfig, model_cfg: DictConfig, machine: Machine) -> Plan:
    """Resolve ``training.precision``, ``batch_shards`` and ``threads`` for ``machine`` and the model."""
    precision, reason, warning = choose_precision(training_cfg.precision, machine)
    threads, shards = training_cfg.threads, training_cfg.batch_shards
    batch_stats = batch_statistics_layers(model_cfg)
    if shards > 1 and batch_stats:
        raise ConfigError(
            f"training.batch_shards={shards}: model.layers.{batch_stats[0]} normalises with batch statistics, "
            "which split batches would change; set training.batch_shards=1 (or 0, which picks 1 here)"
        )
    on_gpu = machine.gpu is not None
    if shards == 0:
        shards = 1 if on_gpu or batch_stats else max(1, min(threads or machine.cores, training_cfg.batch_size))
    common = {"precision": precision, "precision_reason": reason, "xla": on_gpu, "warning": warning}
    if shards == 1:
        return Plan(shards=1, intra_op_threads=threads, inter_op_threads=threads, **common)
    return Plan(shards=shards, intra_op_threads=1, inter_op_threads=threads or shards, **common)
