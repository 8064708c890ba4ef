"""The best-accuracy presets over seeds: median test accuracy and training time against their targets.

    .venv/bin/python benchmarks/recipes.py [--presets mnist_best fashion_best] [--seeds 1 2 3]

Trains each preset once per seed (`mnist-exp experiment=<preset> training.seed=<seed>`), reads
each run's test accuracy and training time (the sum of its epochs) from MLflow, prints the table,
checks the median against the preset's target and every run's training time against the budget,
and appends the table to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from compare import HERE, append_section, child_env, judge, latest_run
from machine import heading, matmul_gflops

from mnist_exp.config import compose
from mnist_exp.tracking.names import PRECISION_PARAM

TARGETS = {"mnist_best": 0.996, "fashion_best": 0.935}  # median test accuracy over the seeds
BUDGET_S = 15 * 60  # training time of one run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", choices=sorted(TARGETS), default=sorted(TARGETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    gflops = matmul_gflops()
    env = child_env()
    rows = []
    with tempfile.TemporaryDirectory(prefix="mnist-exp-recipes-") as tmp:
        store = Path(tmp) / "mlruns"
        for preset in args.presets:
            for seed in args.seeds:
                command = [
                    sys.executable, "-m", "mnist_exp.commands.train", f"experiment={preset}",
                    f"training.seed={seed}", f"tracking.store_dir={store}",
                    f"hydra.run.dir={Path(tmp) / f'{preset}-{seed}'}", "training.verbose=0",
                ]  # fmt: skip
                subprocess.run(command, cwd=HERE.parent, env=env, check=True, capture_output=True)
                experiment = compose([f"experiment={preset}"]).tracking.experiment_name
                _, run = latest_run(store, experiment)
                metrics = run.data.metrics
                rows.append((preset, seed, run.data.params[PRECISION_PARAM], metrics["train_time_s"],
                             metrics["test_accuracy"]))  # fmt: skip
                print(f"{preset} seed {seed}: {rows[-1][3]:.0f} s, test accuracy {rows[-1][4]:.4f}", flush=True)
    lines = [
        *heading("recipes.py", gflops),
        f"`.venv/bin/python benchmarks/recipes.py --presets {' '.join(args.presets)} --seeds "
        f"{' '.join(map(str, args.seeds))}`: each preset trained once per seed; training time is the sum of "
        "its epochs' wall times.",
        "",
        "| preset | seed | precision | training time (s) | test accuracy |",
        "|---|---|---|---|---|",
        *(f"| {p} | {s} | {prec} | {t:.0f} | {a:.4f} |" for p, s, prec, t, a in rows),
        "",
    ]
    met = True
    for preset in args.presets:
        mine = [r for r in rows if r[0] == preset]
        median, slowest = statistics.median(r[4] for r in mine), max(r[3] for r in mine)
        text = (
            f"- {preset}: median test accuracy {median:.4f} (target {TARGETS[preset]}), slowest training "
            f"{slowest:.0f} s (budget {BUDGET_S} s)"
        )
        met &= judge(lines, text, median >= TARGETS[preset] and slowest <= BUDGET_S)
    append_section(args.out, lines)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
