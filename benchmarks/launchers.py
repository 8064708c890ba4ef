"""Wall time of one sweep on the basic launcher and on the local parallel one, measured back to back.

    .venv/bin/python benchmarks/launchers.py [--epochs 5] [hydra overrides ...]

Runs the 4-job grid optimizer.learning_rate=1e-3,1e-2 x training.batch_size=64,128 of the
reference recipe on MNIST, into a temporary store, once per launcher.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GRID = ["optimizer.learning_rate=1e-3,1e-2", "training.batch_size=64,128"]


def sweep(root: Path, launcher: str, extra: list[str]) -> float:
    command = [
        sys.executable,
        "-m",
        "mnist_exp.commands.train",
        "-m",
        f"launcher={launcher}",
        *GRID,
        f"hydra.sweep.dir={root / launcher}",
        f"tracking.store_dir={root / launcher / 'mlruns'}",
        "training.verbose=0",
        *extra,
    ]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    start = time.perf_counter()
    subprocess.run(command, cwd=root, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    extra = [f"training.epochs={args.epochs}", *args.overrides]
    with tempfile.TemporaryDirectory(prefix="mnist-exp-launchers-") as tmp:
        times = {launcher: sweep(Path(tmp), launcher, extra) for launcher in ("basic", "local_parallel")}
    for launcher, seconds in times.items():
        print(f"{launcher:>15}: {seconds:6.1f} s for 4 jobs of {args.epochs} epochs")
    print(f"local_parallel / basic: {times['local_parallel'] / times['basic']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
