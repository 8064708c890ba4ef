"""Race check of store creation: processes and sweeps started at the same moment on a new SQLite store.

    .venv/bin/python benchmarks/store_race.py [--processes 8] [--trials 20] [--no-sweeps]

Each trial starts ``--processes`` processes at one moment on a new store; each opens
the store the way every mnist-exp command does (``tracking.connect``: create and
migrate it if needed), then records a run. Counts the processes that failed and
checks every run is on record. Then two real sweeps (2 jobs of 1 epoch each, on a
small random dataset) start together into one new store: each must end with its own
parent and every child. Last, a normal run into that store. Exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from mlflow import MlflowClient
from sweep_load import random_dataset

from mnist_exp.tracking.reports import children

RACER = textwrap.dedent(
    """
    import sys, time
    from mnist_exp.tracking import store as tracking
    from mnist_exp.config import compose
    cfg = compose([f"tracking.store_dir={sys.argv[1]}"])
    while time.time() < float(sys.argv[2]):
        time.sleep(0.001)
    client = tracking.connect(cfg.tracking)
    experiment_id = tracking.experiment_id(client, cfg.tracking, cfg.objective)
    run = client.create_run(experiment_id)
    client.log_metric(run.info.run_id, "x", 1.0)
    client.set_terminated(run.info.run_id)
    """
)


def runs(store: Path) -> list:
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    return client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=10_000)


def race(store: Path, processes: int) -> tuple[int, int]:
    """Processes started together on a new store: how many failed, and how many runs are on record."""
    start_at = time.time() + 5  # after every process has imported MLflow
    racers = [
        subprocess.Popen([sys.executable, "-c", RACER, str(store), str(start_at)], stderr=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    failed = 0
    for racer in racers:
        _, err = racer.communicate()
        if racer.returncode != 0:
            failed += 1
            print(err.strip().splitlines()[-1], file=sys.stderr)
    return failed, len(runs(store))


def two_sweeps(root: Path, env: dict[str, str]) -> bool:
    """Two sweeps started together into one new store each end FINISHED with their own two children."""
    data = root / "data"
    data.mkdir()
    overrides = random_dataset(data, 600, 100)
    store = root / "sweeps"
    sweeps = []
    for name in ("first", "second"):
        command = [
            sys.executable,
            "-m",
            "mnist_exp.commands.train",
            "-m",
            *overrides,
            f"tracking.store_dir={store}",
            f"tracking.experiment_name={name}",
            f"hydra.sweep.dir={root / name}",
            "training.epochs=1",
            "tracking.log_model=false",
            "training.threads=1",
            "optimizer.learning_rate=0.001,0.002",
        ]
        sweeps.append(subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    ok = True
    for process in sweeps:
        _, err = process.communicate()
        if process.returncode != 0:
            print(err.decode()[-3000:], file=sys.stderr)
            ok = False
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    for name in ("first", "second"):
        experiment = client.get_experiment_by_name(name)
        parents = client.search_runs([experiment.experiment_id], "tags.`sweep.role` = 'parent'") if experiment else []
        jobs = children(client, parents[0].info.run_id) if len(parents) == 1 else []
        statuses = [run.info.status for run in jobs]
        print(
            f"sweep {name}: {len(parents)} parent ({parents[0].info.status if parents else '-'}), children {statuses}"
        )
        ok = ok and len(parents) == 1 and parents[0].info.status == "FINISHED" and statuses == ["FINISHED"] * 2
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--sweeps", action=argparse.BooleanOptionalAction, default=True, help="two sweeps together")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    with tempfile.TemporaryDirectory(prefix="mnist-exp-race-") as tmp:
        root = Path(tmp)
        failures = missing = 0
        for trial in range(args.trials):
            failed, recorded = race(root / f"trial{trial}", args.processes)
            failures += failed
            missing += args.processes - recorded
            print(f"trial {trial + 1}: {args.processes} processes, {failed} failed, {recorded} runs on record")
        print(f"{args.trials} trials of {args.processes} processes: {failures} failures, {missing} runs missing")
        if not args.sweeps:
            ok = failures == 0 and missing == 0
            print("OK" if ok else "FAILED")
            return 0 if ok else 1
        sweeps_ok = two_sweeps(root, env)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "mnist_exp.commands.train",
                *random_dataset(root / "data", 600, 100),
                f"tracking.store_dir={root / 'sweeps'}",
                "training.epochs=1",
                "tracking.log_model=false",
            ],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
        )
        print(f"a normal run into the sweeps' store afterwards: exit code {result.returncode}")
        ok = failures == 0 and missing == 0 and sweeps_ok and result.returncode == 0
        print("OK" if ok else "FAILED")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
