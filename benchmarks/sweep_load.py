"""Load check of the shared SQLite store: a 16-job sweep, 4 jobs at a time, all into one store.

    .venv/bin/python benchmarks/sweep_load.py [--jobs 16] [--workers 4] [--epochs 3] [--lock-s 20]

Writes a random dataset in the IDX format to a temporary folder (no download),
runs the sweep on the parallel launcher with every job logging into one SQLite
store, and, once the first jobs train, holds the store locked from another
process for ``--lock-s`` seconds (0: no lock). Then checks through MLflow's client
that every job is a FINISHED child with a complete metric history. Exits non-zero
if any check fails.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from mlflow import MlflowClient

from mnist_exp.data import idx
from mnist_exp.tracking.reports import children

EPOCH_METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "epoch_time_s", "train_samples_per_s")


def random_dataset(folder: Path, n_train: int, n_test: int) -> list[str]:
    """Random 28x28 images and labels as IDX files; the overrides that point the mnist config at them."""
    rng = np.random.default_rng(0)
    arrays = {
        ("train_images", "train-images-idx3-ubyte"): rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        ("train_labels", "train-labels-idx1-ubyte"): rng.integers(0, 10, n_train, dtype=np.uint8),
        ("test_images", "t10k-images-idx3-ubyte"): rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        ("test_labels", "t10k-labels-idx1-ubyte"): rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    overrides = [
        f"dataset.cache_dir={folder}",
        f"dataset.train_size={n_train}",
        f"dataset.test_size={n_test}",
        "dataset.sources=[]",
    ]
    for (role, filename), array in arrays.items():
        data = idx.encode(array)
        (folder / filename).write_bytes(data)
        overrides.append(f"dataset.files.{role}.sha256={hashlib.sha256(data).hexdigest()}")
    return overrides


def hold_lock(database: Path, seconds: float) -> None:
    """Once the sweep's jobs train (a child run exists), hold the SQLite store locked for ``seconds``."""
    while True:
        time.sleep(1)
        if not database.exists():
            continue
        with contextlib.closing(sqlite3.connect(database, timeout=60)) as probe:
            try:
                if probe.execute("SELECT count(*) FROM runs").fetchone()[0] >= 2:  # the parent and a job
                    break
            except sqlite3.OperationalError:  # the schema is still being made
                continue
    time.sleep(3)
    holder = sqlite3.connect(database, timeout=60, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    print(f"store locked for {seconds:.0f} s", flush=True)
    time.sleep(seconds)
    holder.execute("ROLLBACK")
    holder.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lock-s", type=float, default=20.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mnist-exp-load-") as tmp:
        root = Path(tmp)
        (root / "data").mkdir()
        overrides = random_dataset(root / "data", 3000, 500)
        store = root / "mlruns"
        command = [
            sys.executable,
            "-m",
            "mnist_exp.commands.train",
            "-m",
            "launcher=local_parallel",
            f"hydra.launcher.n_jobs={args.workers}",
            f"hydra.sweep.dir={root / 'sweep'}",
            f"tracking.store_dir={store}",
            "tracking.experiment_name=load_check",
            f"training.epochs={args.epochs}",
            f"training.seed=range({args.jobs})",
            *overrides,
        ]
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        start = time.perf_counter()
        with tempfile.TemporaryFile("w+") as log:
            process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
            if args.lock_s:
                hold_lock(store / "mlflow.db", args.lock_s)
            code = process.wait()
            wall = time.perf_counter() - start
            if code != 0:
                log.seek(0)
                print(log.read()[-5000:], file=sys.stderr)
                return 1

        client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
        (parent,) = client.search_runs(
            [client.get_experiment_by_name("load_check").experiment_id], "tags.`sweep.role` = 'parent'"
        )
        jobs = children(client, parent.info.run_id)
        finished = [run for run in jobs if run.info.status == "FINISHED"]
        complete = [
            run
            for run in finished
            if all(len(client.get_metric_history(run.info.run_id, m)) == args.epochs for m in EPOCH_METRICS)
        ]
        points = sum(len(client.get_metric_history(r.info.run_id, m)) for r in jobs for m in EPOCH_METRICS)
        print(
            f"{args.jobs} jobs, {args.workers} workers, {args.epochs} epochs each, one SQLite store, "
            f"locked for {args.lock_s:.0f} s during the sweep"
        )
        print(f"wall time: {wall:.1f} s")
        print(f"child runs: {len(jobs)}, FINISHED: {len(finished)}, with complete metric histories: {len(complete)}")
        print(f"per-epoch metric points recorded: {points} (expected {args.jobs * args.epochs * len(EPOCH_METRICS)})")
        print(f"parent: {parent.info.status}, jobs_finished={parent.data.metrics.get('jobs_finished')}")
        ok = len(jobs) == len(complete) == args.jobs and parent.info.status == "FINISHED"
        print("OK" if ok else "FAILED")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
