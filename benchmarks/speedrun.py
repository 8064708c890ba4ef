"""Time to 99.0% MNIST test accuracy: `mnist-exp experiment=speedrun` over 3 seeds.

    .venv/bin/python benchmarks/speedrun.py [--seeds 1 2 3] [-- extra overrides]

Reports each seed's training time (the sum of its epochs, from MLflow) and test
accuracy, and appends the table to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from compare import HERE, append_section, history, latest_run
from machine import heading, matmul_gflops

from mnist_exp.config import compose
from mnist_exp.plan import plan, this_machine

TARGET = 0.99


def recipe(overrides: list[str]) -> str:
    """The speedrun's settings, read from its composed config."""
    cfg = compose(["experiment=speedrun", *overrides])
    t, schedule = cfg.training, cfg.lr_schedule
    layers = ", ".join(
        spec._target_.rsplit(".", 1)[-1]
        + (f"({spec.get('filters') or spec.get('units')})" if "filters" in spec or "units" in spec else "")
        for spec in cfg.model.layers.values()
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
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    gflops = matmul_gflops()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    rows = []
    with tempfile.TemporaryDirectory(prefix="mnist-exp-speedrun-") as tmp:
        store = Path(tmp) / "mlruns"
        for seed in args.seeds:
            command = [
                sys.executable,
                "-m",
                "mnist_exp.commands.train",
                "experiment=speedrun",
                f"training.seed={seed}",
                f"tracking.store_dir={store}",
                f"hydra.run.dir={Path(tmp) / str(seed)}",
                "training.verbose=0",
                *args.overrides,
            ]
            subprocess.run(command, cwd=HERE.parent, env=env, check=True, capture_output=True)
            client, run = latest_run(store, "speedrun")
            epochs = history(client, run, "epoch_time_s")
            rows.append((seed, run.data.metrics["train_time_s"], run.data.metrics["test_accuracy"], epochs))
            print(f"seed {seed}: training {rows[-1][1]:.1f} s, test accuracy {rows[-1][2]:.4f}", flush=True)
    reached = [r for r in rows if r[2] >= TARGET]
    lines = [
        *heading("speedrun.py", gflops),
        f"`.venv/bin/python benchmarks/speedrun.py --seeds {' '.join(map(str, args.seeds))}"
        + (f" -- {' '.join(args.overrides)}" if args.overrides else "")
        + f"`: `experiment=speedrun`: {recipe(args.overrides)}. Training time is the sum of the epochs' wall "
        "times (the test evaluation after training is not counted).",
        "",
        "| seed | training time (s) | epoch times (s) | test accuracy | reached 99.0% |",
        "|---|---|---|---|---|",
    ]
    for seed, seconds, accuracy, epochs in rows:
        lines.append(
            f"| {seed} | {seconds:.1f} | {', '.join(f'{e:.1f}' for e in epochs)} | {accuracy:.4f} | "
            f"{'yes' if accuracy >= TARGET else 'no'} |"
        )
    lines.append("")
    lines.append(f"{len(reached)} of {len(rows)} seeds reached {TARGET:.1%}; target: under 15 s of training.")
    append_section(args.out, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
