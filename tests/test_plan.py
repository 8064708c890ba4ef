"""Each machine gets its plan: precision, batch shards, threads and XLA, computed from given facts."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mnist_exp.config import compose
from mnist_exp.plan import Machine, Plan, choose_precision, cpu_info, plan, this_machine

BATCH_NORM = "+model.layers.norm={_target_: keras.layers.BatchNormalization}"
AVX2 = Machine("AMD EPYC", frozenset({"sse4_2", "avx", "avx2", "fma"}), cores=2)
AVX512_BF16 = Machine("AMD EPYC 9R14", frozenset({"avx2", "avx512f", "avx512_bf16"}), cores=2)
AMX = Machine("Intel Xeon 8480", frozenset({"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"}), cores=4)
T4 = Machine("Intel Xeon", frozenset({"avx2"}), cores=8, gpu="Tesla T4", gpu_compute_capability=(7, 5))
A100 = Machine("AMD EPYC", frozenset({"avx2"}), cores=16, gpu="A100", gpu_compute_capability=(8, 0))


@pytest.mark.parametrize(
    ("machine", "policy", "reason"),
    [
        (AVX2, "float32", "no native bfloat16 (no AVX512_BF16 or AMX; found AVX2)"),
        (AVX512_BF16, "mixed_bfloat16", "bfloat16 is native here (AVX512_BF16)"),
        (AMX, "mixed_bfloat16", "bfloat16 is native here (AMX)"),
        (T4, "mixed_float16", "float16 Tensor Cores (GPU compute capability 7.5)"),
        (A100, "mixed_bfloat16", "bfloat16 is native here (GPU compute capability 8.0)"),
        # oneDNN capped below the CPU's bfloat16 instructions computes as an AVX2 CPU does
        (
            replace(AVX512_BF16, isa_limit="AVX2"),
            "float32",
            "no native bfloat16 (AVX512_BF16 unused: ONEDNN_MAX_CPU_ISA=AVX2)",
        ),
        (replace(AMX, isa_limit="AVX512_CORE_BF16"), "mixed_bfloat16", "bfloat16 is native here (AVX512_BF16)"),
        (replace(AMX, isa_limit="ALL"), "mixed_bfloat16", "bfloat16 is native here (AMX)"),
        (
            replace(AMX, gpu="P100", gpu_compute_capability=(6, 0)),
            "float32",
            "no Tensor Cores (GPU compute capability 6.0)",
        ),
    ],
)
def test_auto_precision_is_bfloat16_only_where_the_hardware_has_it(machine, policy, reason) -> None:
    assert choose_precision("auto", machine) == (policy, reason, None)


def test_forced_bfloat16_without_native_support_runs_with_a_warning() -> None:
    policy, _, warning = choose_precision("mixed_bfloat16", AVX2)
    assert policy == "mixed_bfloat16"
    assert "emulated, expect training about 8x slower than float32. Fix: training.precision=auto" in warning
    assert choose_precision("mixed_bfloat16", AVX512_BF16)[2] is None
    assert choose_precision("float32", AMX) == ("float32", "set in training.precision", None)


def shape(p: Plan) -> tuple[int, int, int, bool]:
    return p.shards, p.intra_op_threads, p.inter_op_threads, p.xla


@pytest.mark.parametrize(
    ("machine", "overrides", "expected"),
    [
        (AVX2, [], (2, 1, 2, False)),
        (AVX2.__class__("1 core", AVX2.cpu_flags, cores=1), [], (1, 0, 0, False)),
        (AMX, [], (4, 1, 4, False)),
        (T4, [], (1, 0, 0, True)),
        (A100, ["training.threads=4"], (1, 4, 4, True)),
        (AVX2, ["training.threads=3"], (3, 1, 3, False)),
        (AVX2, ["training.threads=1"], (1, 1, 1, False)),
        (AVX2, ["training.batch_shards=1"], (1, 0, 0, False)),
        (AVX2, ["training.batch_shards=4"], (4, 1, 4, False)),
        (AVX2, ["training.threads=2", "training.batch_shards=4"], (4, 1, 2, False)),
        (AVX2, ["training.threads=8", "training.batch_size=4"], (4, 1, 8, False)),
        (AVX2, ["training.threads=2", BATCH_NORM], (1, 2, 2, False)),
    ],
)
def test_batches_split_one_part_per_core_on_a_cpu_and_not_on_a_gpu(machine, overrides, expected) -> None:
    cfg = compose(overrides)
    assert shape(plan(cfg.training, cfg.model, machine)) == expected


def test_this_machine_is_read_from_its_cpu_flags(monkeypatch) -> None:
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    machine = this_machine()
    model, flags = cpu_info()
    assert machine.cpu_flags == flags and machine.cpu_model == model and machine.isa_limit is None
    expected = "mixed_bfloat16" if {"avx512_bf16", "amx_bf16"} & flags else "float32"
    cfg = compose()
    assert plan(cfg.training, cfg.model, machine).precision == expected
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx2")
    capped = this_machine()
    assert capped.isa_limit == "AVX2" and "oneDNN limited to AVX2" in capped.describe()
    assert plan(cfg.training, cfg.model, capped).precision == "float32"
