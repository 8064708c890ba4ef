"""Time to 99.0% MNIST test accuracy: `mnist-exp experiment=speedrun` over seeds, natively and capped at AVX2.

    .venv/bin/python benchmarks/speedrun.py [--seeds 1..10,42] [--isa native avx2] [-- extra overrides]

Reports each seed's training time (the sum of its epochs, from MLflow), test accuracy and
instruction-set cap, checks the targets (every seed at least 99.0%, their mean at least
99.1%, the slowest under 15 s of training, under each cap) and appends the table to
benchmarks/RESULTS.md. ``avx2`` runs with ONEDNN_MAX_CPU_ISA=AVX2: what an AVX2-only CPU computes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from compare import HERE, append_section, child_env, history, judge, latest_run
from machine import heading, matmul_gflops

from mnist_exp.config import compose
from mnist_exp.plan import plan, this_machine
from mnist_exp.tracking.names import PRECISION_PARAM

TARGET, MEAN_TARGET, TIME_LIMIT_S = 0.99, 0.991, 15.0
ISA_CAPS = {"native": None, "avx2": "AVX2"}  # ONEDNN_MAX_CPU_ISA for each


def seed_list(text: str) -> list[int]:
    """Seeds from ``1..10,42`` (ranges inclusive, comma-separated)."""
    seeds: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("..")
        seeds += range(int(first), int(last or first) + 1)
    return seeds


def recipe(overrides: list[str]) -> str:
    """The speedrun's settings, read from its composed config."""
    cfg = compose(["experiment=speedrun", *overrides])
    t, schedule = cfg.training, cfg.lr_schedule
    layers = ", ".join(
        spec._target_.rsplit(".", 1)[-1]
        + (f"({spec.get('filters') or spec.get('units')})" if "filters" in spec or "units" in spec else "")
        for spec in cfg.model.layers.values()
        if spec is not None
    )
    return (
        f"model `{cfg.model.name}` ({layers}, Dense), {t.epochs} epochs over {cfg.dataset.train_size:,} images "
        f"(validation split {t.validation_split}), batch {t.batch_size}, {cfg.optimizer.name} peak lr "
        f"{cfg.optimizer.learning_rate:g}, lr schedule {schedule._target_.rsplit('.', 1)[-1]}"
        + (
            f" (warm-up {schedule.warmup_epochs:g} epochs, to {schedule.final_fraction:g}x)"
            if "warmup_epochs" in schedule
            else ""
        )
        + f", precision {t.precision} ({plan(t, cfg.model, this_machine()).precision} here)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=seed_list, default=seed_list("1..10,42"), help="e.g. 1..10,42")
    parser.add_argument("--isa", nargs="+", choices=sorted(ISA_CAPS), default=["native", "avx2"])
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    gflops = matmul_gflops()
    env = child_env()
    rows = []
    with tempfile.TemporaryDirectory(prefix="mnist-exp-speedrun-") as tmp:
        store = Path(tmp) / "mlruns"
        for seed in args.seeds:
            for isa in args.isa:  # alternating, so a slow spell of the machine hits both alike
                cap = {"ONEDNN_MAX_CPU_ISA": ISA_CAPS[isa]} if ISA_CAPS[isa] else {}
                command = [
                    sys.executable,
                    "-m",
                    "mnist_exp.commands.train",
                    "experiment=speedrun",
                    f"training.seed={seed}",
                    f"tracking.store_dir={store}",
                    f"hydra.run.dir={Path(tmp) / f'{seed}-{isa}'}",
                    "training.verbose=0",
                    *args.overrides,
                ]
                subprocess.run(command, cwd=HERE.parent, env=env | cap, check=True, capture_output=True)
                client, run = latest_run(store, "speedrun")
                epochs = history(client, run, "epoch_time_s")
                metrics = run.data.metrics
                precision = run.data.params[PRECISION_PARAM]
                rows.append((seed, isa, precision, metrics["train_time_s"], metrics["test_accuracy"], epochs))
                print(f"seed {seed} ({isa}): training {rows[-1][3]:.1f} s, test accuracy {rows[-1][4]:.4f}", flush=True)
    seeds_text = ",".join(map(str, args.seeds))
    lines = [
        *heading("speedrun.py", gflops),
        f"`.venv/bin/python benchmarks/speedrun.py --seeds {seeds_text} --isa {' '.join(args.isa)}"
        + (f" -- {' '.join(args.overrides)}" if args.overrides else "")
        + f"`: `experiment=speedrun`: {recipe(args.overrides)}. Training time is the sum of the epochs' wall "
        "times (the test evaluation after training is not counted); `avx2` ran with ONEDNN_MAX_CPU_ISA=AVX2.",
        "",
        "| seed | ISA | precision | training time (s) | epoch times (s) | test accuracy | reached 99.0% |",
        "|---|---|---|---|---|---|---|",
    ]
    for seed, isa, precision, seconds, accuracy, epochs in rows:
        lines.append(
            f"| {seed} | {isa} | {precision} | {seconds:.1f} | {', '.join(f'{e:.1f}' for e in epochs)} | "
            f"{accuracy:.4f} | {'yes' if accuracy >= TARGET else 'no'} |"
        )
    lines.append("")
    met = True
    for isa in args.isa:
        mine = [r for r in rows if r[1] == isa]
        accuracies, times = [r[4] for r in mine], [r[3] for r in mine]
        mean = sum(accuracies) / len(accuracies)
        text = (
            f"- {isa}: lowest {min(accuracies):.4f} (target {TARGET}), mean {mean:.4f} (target {MEAN_TARGET}), "
            f"slowest {max(times):.1f} s (target under {TIME_LIMIT_S:g} s)"
        )
        met &= judge(lines, text, min(accuracies) >= TARGET and mean >= MEAN_TARGET and max(times) < TIME_LIMIT_S)
    append_section(args.out, lines)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
