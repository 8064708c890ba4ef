"""What `training.precision=mixed_bfloat16` gives on this CPU: the reference run in both precisions.

    .venv/bin/python benchmarks/precision.py [--rounds 2] [--epochs 5]

Runs `mnist-exp experiment=reference` with float32 and with mixed_bfloat16,
alternating, and appends a table (wall time, steady epoch, samples/s, test
accuracy) to benchmarks/RESULTS.md under a heading naming the machine, with
what `training.precision=auto` picks here. ``--epochs`` shortens both runs (bfloat16
is emulated, about 8x slower, on CPUs without AVX512_BF16 or AMX).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from compare import Variant, alternating, append_section, benchmark_parser, child_env, run_mnist_exp
from machine import heading, matmul_gflops

from mnist_exp.config import compose
from mnist_exp.plan import plan, this_machine

PRECISIONS = ("float32", "mixed_bfloat16")


def main() -> int:
    parser = benchmark_parser(__doc__, rounds=2)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    gflops = matmul_gflops()
    env = child_env()
    variants = {p: Variant(p) for p in PRECISIONS}
    with tempfile.TemporaryDirectory(prefix="mnist-exp-precision-") as tmp:
        for round_, precision in alternating(args.rounds, PRECISIONS):
            overrides = [f"training.precision={precision}", f"training.epochs={args.epochs}"]
            sample = run_mnist_exp(Path(tmp) / "mlruns", overrides, env)
            variants[precision].samples.append(sample)
            print(
                f"round {round_ + 1} {precision}: wall {sample.wall_s:.1f} s, "
                f"epochs {[round(e, 2) for e in sample.epoch_s]}, test accuracy {sample.test_accuracy:.4f}",
                flush=True,
            )
    base = variants["float32"]
    cfg = compose()
    auto = plan(cfg.training, cfg.model, this_machine())
    lines = [
        *heading("precision.py", gflops),
        f"`.venv/bin/python benchmarks/precision.py --rounds {args.rounds} --epochs {args.epochs}`: the reference "
        f"run in each precision, alternating, medians over rounds. `training.precision=auto` picks "
        f"**{auto.precision}** here: {auto.precision_reason}.",
        "",
        "| precision | wall time (s) | steady epoch (s) | train samples/s | test accuracy | throughput vs float32 |",
        "|---|---|---|---|---|---|",
    ]
    for precision, v in variants.items():
        accs = ", ".join(f"{x:.4f}" for x in v.accuracies)
        lines.append(
            f"| {precision} | {v.wall:.1f} | {v.steady_epoch:.2f} | {v.throughput:,.0f} | {accs} | "
            f"{v.throughput / base.throughput:.2f} |"
        )
    append_section(args.out, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
