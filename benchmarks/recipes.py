"""The best-accuracy presets over seeds: median test accuracy and training time against their targets.

    .venv/bin/python benchmarks/recipes.py [--presets mnist_best fashion_best] [--seeds 1 2 3] [--store DIR]

Trains each preset once per seed (`mnist-exp experiment=<preset> training.seed=<seed>`), reads
each run's test accuracy and training time (the sum of its epochs) from MLflow, prints the table,
checks the median against the preset's target and every run's training time against the budget,
and appends each preset's table to benchmarks/RESULTS.md as soon as its seeds are done.

With ``--store`` the runs are kept in that MLflow store folder (default: a temporary one), and a
seed whose config already FINISHED there is not trained again (``training.skip_if_done``): a
benchmark that was stopped goes on from the seeds it had finished.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from compare import HERE, append_section, child_env, judge
from machine import heading, matmul_gflops
from mlflow import MlflowClient
from mlflow.entities import Run

from mnist_exp.config import compose
from mnist_exp.schema import config_hash
from mnist_exp.tracking.names import PRECISION_PARAM
from mnist_exp.tracking.runs import finished_twin

TARGETS = {"mnist_best": 0.996, "fashion_best": 0.935}  # median test accuracy over the seeds
BUDGET_S = 15 * 60  # training time of one run


def train_seed(preset: str, seed: int, store: Path, run_dir: Path) -> Run:
    """The FINISHED run of ``preset`` with ``seed`` in ``store``: trained now unless its config already was."""
    overrides = [f"experiment={preset}", f"training.seed={seed}", f"tracking.store_dir={store}"]
    command = [sys.executable, "-m", "mnist_exp.commands.train", *overrides, "training.skip_if_done=true",
               f"hydra.run.dir={run_dir}", "training.verbose=0"]  # fmt: skip
    subprocess.run(command, cwd=HERE.parent, env=child_env(), check=True, capture_output=True)
    cfg = compose(overrides)
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    experiment_id = client.get_experiment_by_name(cfg.tracking.experiment_name).experiment_id
    return finished_twin(client, experiment_id, config_hash(cfg))


def preset_section(preset: str, seeds: list[int], rows: list[tuple], gflops: float) -> tuple[list[str], bool]:
    """The RESULTS.md section of one preset's seeds, and whether it met its target and budget."""
    lines = [
        *heading("recipes.py", gflops),
        f"`.venv/bin/python benchmarks/recipes.py --presets {preset} --seeds {' '.join(map(str, seeds))}`: "
        "trained once per seed; training time is the sum of its epochs' wall times.",
        "",
        "| preset | seed | precision | training time (s) | test accuracy |",
        "|---|---|---|---|---|",
        *(f"| {preset} | {s} | {prec} | {t:.0f} | {a:.4f} |" for s, prec, t, a in rows),
        "",
    ]
    median, slowest = statistics.median(r[3] for r in rows), max(r[2] for r in rows)
    text = (
        f"- {preset}: median test accuracy {median:.4f} (target {TARGETS[preset]}), slowest training "
        f"{slowest:.0f} s (budget {BUDGET_S} s)"
    )
    return lines, judge(lines, text, median >= TARGETS[preset] and slowest <= BUDGET_S)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", choices=sorted(TARGETS), default=sorted(TARGETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--store", type=Path, help="the MLflow store folder to keep the runs in")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    gflops = matmul_gflops()
    met = True
    with tempfile.TemporaryDirectory(prefix="mnist-exp-recipes-") as tmp:
        work = Path(tmp)
        store = (args.store or work / "mlruns").resolve()
        for preset in args.presets:
            rows = []
            for seed in args.seeds:
                run = train_seed(preset, seed, store, work / f"{preset}-{seed}")
                metrics = run.data.metrics
                rows.append((seed, run.data.params[PRECISION_PARAM], metrics["train_time_s"], metrics["test_accuracy"]))
                print(f"{preset} seed {seed}: {rows[-1][2]:.0f} s, test accuracy {rows[-1][3]:.4f}", flush=True)
            lines, ok = preset_section(preset, args.seeds, rows, gflops)
            append_section(args.out, lines)
            met &= ok
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
