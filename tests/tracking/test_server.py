"""A shared tracking server: PostgreSQL and `mnist-exp-server` on loopback, sweeps from two launchers.

Integration test: it needs Debian's postgresql (make test installs it) and runs its
own PostgreSQL cluster and MLflow server on free loopback ports in temporary folders.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest
from helpers import ONE_EPOCH, PG_BINS, run_module
from mlflow import MlflowClient

from mnist_exp.tracking.migrate import migrate
from mnist_exp.tracking.reports import children

# Two jobs: the launcher's two workers run them side by side, each writing to the same store.
GRID = ["optimizer.learning_rate=0.001,0.01"]
JOBS = 2

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(not PG_BINS, reason="PostgreSQL is not installed (make test installs it)"),
]


def sweep(tmp_path: Path, synthetic: list[str], *overrides: str) -> float:
    start = time.perf_counter()
    run_module(tmp_path, "mnist_exp.commands.train", "-m", *synthetic, *ONE_EPOCH, *GRID, *overrides, timeout=900)
    return time.perf_counter() - start


def check_children(uri: str, experiment: str) -> None:
    client = MlflowClient(uri)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    (parent,) = client.search_runs([experiment_id], "tags.`sweep.role` = 'parent'")
    jobs = children(client, parent.info.run_id)
    assert [run.info.status for run in jobs] == ["FINISHED"] * JOBS
    for run in jobs:
        for metric in ("train_loss", "val_accuracy"):
            assert [m.step for m in client.get_metric_history(run.info.run_id, metric)] == [1]
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
        assert artifacts == {"plots/learning_curves.png", "plots/confusion_matrix.png"}
        client.download_artifacts(run.info.run_id, "config.yaml", str(Path(tempfile.mkdtemp())))
    assert parent.info.status == "FINISHED"


def test_parallel_and_submitit_sweeps_land_in_the_server(tmp_path, store, synthetic, server, capsys) -> None:
    sqlite_s = sweep(
        tmp_path,
        synthetic,
        f"tracking.store_dir={store}",
        f"hydra.sweep.dir={tmp_path / 'sqlite'}",
    )
    server_s = sweep(
        tmp_path,
        synthetic,
        "launcher=local_parallel",
        "tracking=server",
        f"tracking.uri={server}",
        "tracking.experiment_name=parallel",
        f"hydra.sweep.dir={tmp_path / 'parallel'}",
    )
    check_children(server, "parallel")
    submitit_s = sweep(
        tmp_path,
        synthetic,
        "launcher=submitit_local",
        "tracking=server",
        f"tracking.uri={server}",
        "tracking.experiment_name=submitit",
        f"hydra.sweep.dir={tmp_path / 'submitit'}",
    )
    check_children(server, "submitit")
    # The local store's sweep moves onto the server with MLflow's client: runs, histories, artifacts, nesting.
    # It moves the parent and its jobs.
    assert migrate(MlflowClient(f"sqlite:///{store / 'mlflow.db'}"), MlflowClient(server)) == JOBS + 1
    check_children(server, "mnist")
    assert migrate(MlflowClient(f"sqlite:///{store / 'mlflow.db'}"), MlflowClient(server)) == 0
    with capsys.disabled():
        print(
            f"\n{JOBS}-job sweep: basic to SQLite {sqlite_s:.1f} s, local_parallel to server {server_s:.1f} s; "
            f"submitit_local to server {submitit_s:.1f} s"
        )
