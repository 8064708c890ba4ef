"""Sweeps as users launch them: real Hydra multiruns in subprocesses, checked through MLflow's client."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from helpers import ONE_EPOCH, run_module
from mlflow import MlflowClient
from mlflow.entities import Run

from mnist_exp.tracking.reports import children

pytestmark = pytest.mark.slow


def sweep(tmp_path: Path, store: Path, synthetic: list[str], *args: str) -> tuple[MlflowClient, Run, list[Run], Path]:
    """Run a multirun into ``store`` and return its parent and child runs."""
    sweep_dir = tmp_path / "sweep"
    flags = [arg for arg in args if arg.startswith("-")]
    overrides = [arg for arg in args if not arg.startswith("-")]
    run_module(
        tmp_path,
        "mnist_exp.commands.train",
        *flags,
        *synthetic,
        *ONE_EPOCH,
        f"tracking.store_dir={store}",
        f"hydra.sweep.dir={sweep_dir}",
        *overrides,
    )
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    parents = client.search_runs([e.experiment_id for e in client.search_experiments()], "tags.`sweep.role` = 'parent'")
    assert len(parents) == 1
    return client, parents[0], children(client, parents[0].info.run_id), sweep_dir


def summary_rows(sweep_dir: Path) -> list[dict[str, str]]:
    with (sweep_dir / "summary.csv").open() as f:
        return list(csv.DictReader(f))


def test_parallel_grid_gives_one_parent_and_a_child_per_job(tmp_path, store, synthetic) -> None:
    client, parent, jobs, sweep_dir = sweep(
        tmp_path,
        store,
        synthetic,
        "-m",
        "launcher=local_parallel",
        "hydra.launcher.n_jobs=2",
        "optimizer.learning_rate=0.001,0.01",
        "model.layers.dense1.units=16,32",
    )
    assert [run.info.status for run in jobs] == ["FINISHED"] * 4
    assert {(r.data.params["optimizer.learning_rate"], r.data.params["model.layers.dense1.units"]) for r in jobs} == {
        ("0.001", "16"),
        ("0.001", "32"),
        ("0.01", "16"),
        ("0.01", "32"),
    }
    for run in jobs:
        for metric in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
            assert [m.step for m in client.get_metric_history(run.info.run_id, metric)] == [1]
    best = max(jobs, key=lambda r: r.data.metrics["best_val_accuracy"])
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["sweep.dir"] == str(sweep_dir)
    assert "optimizer.learning_rate=0.001,0.01" in parent.data.tags["sweep.overrides"]
    assert parent.data.metrics["best_val_accuracy"] == best.data.metrics["best_val_accuracy"]
    assert parent.data.metrics["jobs_finished"] == 4
    assert parent.data.metrics["jobs_failed"] == 0
    assert parent.data.tags["best_run_id"] == best.info.run_id
    assert parent.data.params["optimizer.learning_rate"] == best.data.params["optimizer.learning_rate"]
    assert parent.data.params["model.layers.dense1.units"] == best.data.params["model.layers.dense1.units"]
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "summary")}
    assert artifacts == {
        "summary/summary.csv",
        "summary/summary.md",
        "summary/comparison.png",
        "summary/parallel_coordinates.png",
    }


def test_a_failing_job_is_recorded_and_the_sweep_still_completes(tmp_path, store, synthetic) -> None:
    client, parent, jobs, sweep_dir = sweep(
        tmp_path,
        store,
        synthetic,
        "-m",
        "launcher=local_parallel",
        "model.layers.dense1.units=16,32,64,-1",
    )
    statuses = sorted(run.info.status for run in jobs)
    assert statuses == ["FAILED", "FINISHED", "FINISHED", "FINISHED"]
    failed = next(run for run in jobs if run.info.status == "FAILED")
    assert "units=-1" in failed.data.tags["error"]
    assert parent.data.metrics["jobs_failed"] == 1
    rows = summary_rows(sweep_dir)
    assert len(rows) == 4
    assert [row["status"] for row in rows].count("FAILED") == 1

    # mnist-exp-report rebuilds the same table from MLflow alone, from the folder or the parent run id.
    table = (sweep_dir / "summary.md").read_text()
    (sweep_dir / "summary.md").unlink()
    result = run_module(tmp_path, "mnist_exp.commands.report", str(sweep_dir))
    assert (sweep_dir / "summary.md").read_text() == table
    assert table in result.stdout
    out = tmp_path / "again"
    run_module(
        tmp_path,
        "mnist_exp.commands.report",
        parent.info.run_id,
        "--tracking-uri",
        client.tracking_uri,
        "--out",
        str(out),
    )
    assert (out / "summary.md").read_text() == table


@pytest.mark.parametrize("launcher", ["local_parallel"])  # basic: the max_failures test below ends the same way
def test_a_sweep_in_which_no_job_finished_ends_its_parent_failed_and_exits_1(
    tmp_path, store, synthetic, launcher
) -> None:
    """Every job fails: the summary of zero finished jobs is written, the parent ends FAILED, the exit code is 1."""
    sweep_dir = tmp_path / "sweep"
    command = [sys.executable, "-m", "mnist_exp.commands.train", "-m", f"launcher={launcher}", *synthetic]
    overrides = [f"tracking.store_dir={store}", f"hydra.sweep.dir={sweep_dir}", "model.layers.dense1.units=-1,-2"]
    result = subprocess.run(
        [*command, *ONE_EPOCH, *overrides], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 1, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "no job of the sweep finished (2 failed)" in lines[0]
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    (parent,) = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "tags.`sweep.role` = 'parent'"
    )
    assert parent.info.status == "FAILED" and parent.info.run_id in lines[0]
    assert [run.info.status for run in children(client, parent.info.run_id)] == ["FAILED", "FAILED"]
    assert parent.data.metrics["jobs_finished"] == 0 and parent.data.metrics["jobs_failed"] == 2
    assert [row["status"] for row in summary_rows(sweep_dir)] == ["FAILED", "FAILED"]
    assert (sweep_dir / "comparison.png").stat().st_size > 0


def test_optuna_sweep_gives_a_child_per_trial_and_the_parent_holds_the_best(tmp_path, store, synthetic) -> None:
    _, parent, jobs, _ = sweep(
        tmp_path,
        store,
        synthetic,
        "experiment=optuna_search",
        "launcher=basic",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.n_jobs=1",
        "tracking.experiment_name=optuna_test",
    )
    assert len(jobs) == 3
    assert all(run.info.status == "FINISHED" for run in jobs)
    study = optuna.load_study(study_name=f"mnist-exp-{parent.info.run_id}", storage=f"sqlite:///{store / 'optuna.db'}")
    assert parent.data.metrics["best_val_accuracy"] == pytest.approx(study.best_value)
    best = next(r for r in jobs if r.info.run_id == parent.data.tags["best_run_id"])
    for key, value in study.best_params.items():
        assert float(parent.data.params[key]) == pytest.approx(float(value))
        assert parent.data.params[key] == best.data.params[key]


@pytest.mark.parametrize("launcher", ["basic", "local_parallel", "optuna"])
def test_a_sweep_stops_launching_jobs_once_max_failures_have_failed(tmp_path, store, synthetic, launcher) -> None:
    """Four jobs that would all fail, sweep.max_failures=1: the sweep stops after the first (the jobs that had
    started beside it in parallel excepted), its parent ends FAILED with the reason, the exit code is 1."""
    sweep_dir = tmp_path / "sweep"
    if launcher == "optuna":  # a study that asks no new trial once one has failed
        grid = ["experiment=optuna_search", "launcher=basic", "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=1",
                "model.layers.conv1.filters=-1"]  # fmt: skip
    else:
        grid = [f"launcher={launcher}", "model.layers.dense1.units=-1,-2,-3,-4"]
    command = [sys.executable, "-m", "mnist_exp.commands.train", "-m", *synthetic, *ONE_EPOCH, *grid]
    overrides = [f"tracking.store_dir={store}", f"hydra.sweep.dir={sweep_dir}", "sweep.max_failures=1"]
    result = subprocess.run([*command, *overrides], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr[-3000:]
    assert "the sweep stopped launching jobs after" in lines[0] and "(sweep.max_failures=1)" in lines[0]
    assert "cannot build 'keras.layers." in lines[0]  # the first failure's error, which names the layer
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    (parent,) = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "tags.`sweep.role` = 'parent'"
    )
    assert parent.info.status == "FAILED" and parent.info.run_id in lines[0]
    assert "sweep.max_failures=1" in parent.data.tags["stop.reason"]
    jobs = children(client, parent.info.run_id)
    in_parallel = 2 if launcher == "local_parallel" else 1  # jobs running when the first failed
    assert 1 <= len(jobs) <= in_parallel and all(run.info.status == "FAILED" for run in jobs)
    assert parent.data.metrics["jobs_failed"] == len(jobs)
    if launcher == "optuna":
        study = optuna.load_study(
            study_name=f"mnist-exp-{parent.info.run_id}", storage=f"sqlite:///{store / 'optuna.db'}"
        )
        assert len(study.trials) == 1
    else:
        output = result.stdout + result.stderr
        assert output.count("job not launched: the sweep stopped launching jobs") == 4 - len(jobs)
