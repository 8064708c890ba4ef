"""Does pruning spend compute well? The Optuna search with and without pruning, in one session.

Runs ``mnist-exp experiment=optuna_search`` (TPE, 2 workers) twice on MNIST, each into a
store of its own: with the experiment's pruner, then with ``hydra.sweeper.pruner=null``.
Reports each search's wall time, trials pruned, epochs trained and best validation accuracy, the ratio of
wall times, and appends the table to benchmarks/RESULTS.md under this machine's heading.
The goal: at most half the wall time, for a best accuracy within 0.002.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from compare import HERE, append_section, child_env
from machine import heading, matmul_gflops
from mlflow import MlflowClient

from mnist_exp.tracking import names


def search(
    store: Path, folder: Path, overrides: list[str], python: str = sys.executable
) -> tuple[float, float, int, int, int]:
    """Wall time, best val accuracy, trials, pruned trials and epochs trained of one search (run by ``python``)."""
    env = child_env()
    command = [
        python, "-m", "mnist_exp.commands.train", "experiment=optuna_search",
        f"tracking.store_dir={store}", f"hydra.sweep.dir={folder}", "training.verbose=0", *overrides,
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, cwd=HERE.parent, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("optuna_search").experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get(names.SWEEP_ROLE_TAG) == names.SWEEP_PARENT_ROLE]
    jobs = [r for r in runs if r is not parent]
    pruned = sum(r.data.tags.get(names.PRUNED_TAG) == "true" for r in jobs)
    epochs = sum(len(client.get_metric_history(r.info.run_id, names.VAL_ACCURACY)) for r in jobs)
    return wall, parent.data.metrics[names.BEST_VAL_ACCURACY], len(jobs), pruned, epochs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("overrides", nargs="*", help="more overrides for both searches")
    args = parser.parse_args()
    gflops = matmul_gflops()
    common = [f"hydra.sweeper.n_trials={args.trials}", f"training.epochs={args.epochs}", *args.overrides]
    results = {}
    with tempfile.TemporaryDirectory(prefix="mnist-exp-search-") as tmp:
        for label, extra in (("pruning", []), ("no pruning", ["hydra.sweeper.pruner=null"])):
            results[label] = search(Path(tmp) / label.replace(" ", "-"), Path(tmp) / f"{label}-sweep", common + extra)
            wall, best, trials, pruned, epochs = results[label]
            print(f"{label}: {wall:.0f} s, best val accuracy {best:.4f}, {pruned} of {trials} pruned, {epochs} epochs")
    (pruned_wall, pruned_best, *_), (plain_wall, plain_best, *_) = results["pruning"], results["no pruning"]
    lines = [
        *heading("search.py", gflops),
        f"`.venv/bin/python benchmarks/search.py --trials {args.trials} --epochs {args.epochs}"
        + (f" {' '.join(args.overrides)}" if args.overrides else "")
        + "`: "
        "`experiment=optuna_search` (TPE, 2 workers of 1 thread), with its pruner (`hydra/sweeper/pruner` in "
        "the experiment) and with `hydra.sweeper.pruner=null`.",
        "",
        "| search | wall time (s) | trials pruned | epochs trained | best val accuracy |",
        "|---|---|---|---|---|",
        *(
            f"| {label} | {wall:.0f} | {pruned} of {trials} | {epochs} | {best:.4f} |"
            for label, (wall, best, trials, pruned, epochs) in results.items()
        ),
        "",
        f"Wall time with pruning / without: {pruned_wall / plain_wall:.2f} (goal: at most 0.5); best accuracy "
        f"difference {pruned_best - plain_best:+.4f} (goal: within 0.002).",
    ]
    append_section(args.out, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
