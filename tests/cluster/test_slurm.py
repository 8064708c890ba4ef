"""Sweeps on a real one-node SLURM cluster (``launcher=slurm``): the record they leave whatever the cluster does.

The cluster runs from Debian's slurm-wlm and munge, in a folder of this module's own, on
loopback ports, without an accounting database (``slurm_cluster.py``); ``make test``
installs the packages. Every test reads the MLflow record: one parent, one run per job,
each epoch logged once, the final statuses.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import optuna
import psycopg
import pytest
from helpers import FAST, PG_BINS, free_port, launch, runs_in
from mlflow import MlflowClient
from slurm_cluster import available, listening_addresses, one_node_slurm

from mnist_exp.tracking import names
from mnist_exp.tracking.reports import children

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.slow,
    pytest.mark.xdist_group("slurm"),  # one cluster, one worker
    pytest.mark.skipif(available() is not None, reason=f"no SLURM here: {available()}"),
]
LONG = [*FAST, "training.epochs=12"]  # long enough to be stopped between its epochs


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("slurm")
    with one_node_slurm(folder, free_port(), free_port()) as env:
        pids = [int((folder / f"{daemon}.pid").read_text()) for daemon in ("slurmctld", "slurmd")]
        addresses = listening_addresses(pids)
        assert addresses and all(a.startswith("127.0.0.1:") for a in addresses), addresses
        yield env


def sweep(tmp_path: Path, slurm: dict[str, str], *overrides: str) -> subprocess.Popen:
    """``mnist-exp -m launcher=slurm ...`` submitting to the test cluster, in the background."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    return launch(
        tmp_path, "mnist_exp.commands.train", "-m", "launcher=slurm", "hydra.launcher.poll_s=1",
        f"hydra.sweep.dir={tmp_path / 'sweep'}", *overrides, env=slurm,
    )  # fmt: skip


def finish(process: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    out, _ = process.communicate(timeout=timeout)
    return process.returncode, out


def squeue(slurm: dict[str, str], fmt: str) -> list[str]:
    command = ["squeue", "--noheader", "--array", f"--format={fmt}"]
    return subprocess.run(command, env=os.environ | slurm, capture_output=True, text=True).stdout.split()


def epochs_logged(store: Path) -> dict[str, list[int]]:
    """Each run's logged training-loss steps, read from the SQLite file as the jobs write it."""
    database = store / "mlflow.db"
    if not database.exists():
        return {}
    steps: dict[str, list[int]] = {}
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as connection:
        try:
            rows = connection.execute("SELECT run_uuid, step FROM metrics WHERE key = ?", (names.TRAIN_LOSS,))
        except sqlite3.Error:  # the store is being created
            return {}
        for run, step in rows:
            steps.setdefault(run, []).append(step)
    return steps


def wait_until(condition, timeout: float = 120, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def sweep_record(store: Path) -> tuple[object, list]:
    """The sweep's parent run and its children, from the SQLite store."""
    (parent,) = [run for run in runs_in(store) if run.data.tags.get(names.SWEEP_ROLE_TAG) == names.SWEEP_PARENT_ROLE]
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    return parent, children(client, parent.info.run_id)


def assert_each_epoch_once(store: Path, run_ids: list[str], epochs: int) -> None:
    logged = epochs_logged(store)
    for run_id in run_ids:
        assert sorted(logged[run_id]) == list(range(1, epochs + 1)), (run_id, sorted(logged[run_id]))


@pytest.mark.integration
@pytest.mark.skipif(not PG_BINS, reason="PostgreSQL is not installed (make test installs it)")
def test_grid_and_optuna_sweeps_on_slurm_land_in_the_server_and_the_study_in_postgresql(
    tmp_path, synthetic, slurm, server, postgres
) -> None:
    to_server = ["tracking=server", f"tracking.uri={server}"]
    grid = sweep(tmp_path / "grid", slurm, *synthetic, *FAST, "training.epochs=1", *to_server,
                 "tracking.experiment_name=slurm_grid", "optimizer.learning_rate=0.001,0.01")  # fmt: skip
    code, out = finish(grid)
    assert code == 0, out[-3000:]
    client = MlflowClient(server)
    experiment = client.get_experiment_by_name("slurm_grid").experiment_id
    (parent,) = client.search_runs([experiment], f"tags.`{names.SWEEP_ROLE_TAG}` = 'parent'")
    jobs = children(client, parent.info.run_id)
    assert parent.info.status == "FINISHED"
    assert [run.info.status for run in jobs] == ["FINISHED", "FINISHED"]
    for run in jobs:
        assert [m.step for m in client.get_metric_history(run.info.run_id, names.TRAIN_LOSS)] == [1]

    # The study in the same PostgreSQL, in a database of its own: Optuna and MLflow both keep an alembic_version table.
    with psycopg.connect(postgres, autocommit=True) as connection:
        connection.execute("CREATE DATABASE optuna")
    storage = postgres.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] + "/optuna"
    search = sweep(
        tmp_path / "optuna", slurm, *synthetic, *FAST, "training.epochs=3", *to_server, "experiment=optuna_search",
        "launcher=slurm", "tracking.experiment_name=slurm_optuna", f"tracking.optuna_storage={storage}",
        "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=2", "hydra.sweeper.sampler.n_startup_trials=2",
    )  # fmt: skip
    code, out = finish(search)
    assert code == 0, out[-3000:]
    experiment = client.get_experiment_by_name("slurm_optuna").experiment_id
    (parent,) = client.search_runs([experiment], f"tags.`{names.SWEEP_ROLE_TAG}` = 'parent'")
    jobs = children(client, parent.info.run_id)
    assert parent.info.status == "FINISHED" and len(jobs) == 4
    study_name = parent.data.tags[names.STUDY_TAG].split(" in ")[0]
    study = optuna.load_study(study_name=study_name, storage=storage)
    assert len(study.trials) == 4
    assert {t.state for t in study.trials} <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    for run in jobs:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, names.TRAIN_LOSS)]
        assert steps == list(range(1, len(steps) + 1)) and steps, steps  # pruned runs stop early, none repeats
        assert run.info.status == "FINISHED"


def test_a_job_past_its_time_limit_is_requeued_and_continues_in_the_same_run(tmp_path, store, synthetic, slurm) -> None:
    process = sweep(tmp_path, slurm, *synthetic, *LONG, f"tracking.store_dir={store}", "optimizer.learning_rate=0.001")
    wait_until(lambda: any(len(steps) >= 2 for steps in epochs_logged(store).values()), what="epoch 2")
    (job,) = squeue(slurm, "%i")
    # What SLURM sends signal_delay_s before a job's time limit (submitit asks for it with --signal).
    subprocess.run(["scancel", "--signal=USR2", job], env=os.environ | slurm, check=True)
    # SLURM holds a requeued job for two minutes (Reason BeginTime): the test lets it start in a few
    # seconds. Not at once: a job started again within the second its old credential was revoked is
    # killed by SLURM ("Killing non-startable batch JobId=1: Job credential revoked"), and FAILED.
    wait_until(lambda: "BeginTime" in squeue(slurm, "%r"), what="the requeue")
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now+3"], env=os.environ | slurm, check=True)
    code, out = finish(process)
    assert code == 0, out[-3000:]
    parent, (run,) = sweep_record(store)
    assert parent.info.status == "FINISHED"
    assert run.info.status == "FINISHED"
    assert run.data.tags[names.STOP_REASON_TAG] == "time limit"
    assert_each_epoch_once(store, [run.info.run_id], 12)


def test_a_cancelled_job_ends_killed_and_the_other_jobs_run_to_the_end(tmp_path, store, synthetic, slurm) -> None:
    process = sweep(tmp_path, slurm, *synthetic, *LONG, f"tracking.store_dir={store}", "hydra.launcher.lost_after_s=10",
                    "optimizer.learning_rate=0.001,0.003")  # fmt: skip
    wait_until(lambda: len(epochs_logged(store)) == 2, what="both jobs training")
    first = sorted(squeue(slurm, "%i"))[0]
    subprocess.run(["scancel", first], env=os.environ | slurm, check=True)
    code, out = finish(process)
    assert code == 0, out[-3000:]
    parent, jobs = sweep_record(store)
    by_job = {run.data.tags[names.SWEEP_JOB_TAG]: run for run in jobs}
    assert sorted(by_job) == ["0", "1"]
    assert by_job["0"].info.status == "KILLED"
    # squeue names the state a job ended in (for MinJobAge): no accounting database is needed for it.
    assert f"SLURM job {first} ended without a result (CANCELLED)" in by_job["0"].data.tags[names.STOP_REASON_TAG]
    assert by_job["1"].info.status == "FINISHED"
    assert_each_epoch_once(store, [by_job["1"].info.run_id], 12)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags[names.SWEEP_LOST_TAG].startswith(f"job 0: SLURM job {first} ended without")


def test_a_sweep_killed_on_the_submitting_machine_resumes_after_cancelling_its_queued_jobs(
    tmp_path, store, synthetic, slurm
) -> None:
    grid = ["optimizer.learning_rate=0.001,0.003"]
    epochs = [*FAST, "training.epochs=40"]
    process = sweep(tmp_path, slurm, *synthetic, *epochs, f"tracking.store_dir={store}", *grid)
    wait_until(lambda: len(epochs_logged(store)) == 2, what="both jobs training")
    process.send_signal(signal.SIGKILL)  # the submitting machine is gone; its jobs train on
    process.wait()
    parent, _ = sweep_record(store)
    assert parent.info.status == "RUNNING"
    again = sweep(tmp_path, slurm, *synthetic, *epochs, f"tracking.store_dir={store}", *grid,
                  f"sweep.resume={parent.info.run_id}")  # fmt: skip
    code, out = finish(again)
    assert code == 0, out[-3000:]
    assert "cancelling SLURM jobs" in out
    parent, jobs = sweep_record(store)
    assert parent.info.status == "FINISHED"
    assert [run.info.status for run in jobs] == ["FINISHED", "FINISHED"]
    assert all("cancelled by sweep.resume" in run.data.tags.get(names.STOP_REASON_TAG, "") or
               run.data.tags.get(names.STOP_REASON_TAG, "").startswith("preempted") for run in jobs)  # fmt: skip
    assert_each_epoch_once(store, [run.info.run_id for run in jobs], 40)


def test_a_job_slurm_cannot_schedule_is_reported_with_its_reason_within_a_minute(
    tmp_path, store, synthetic, slurm
) -> None:
    start = time.monotonic()
    process = sweep(tmp_path, slurm, *synthetic, *FAST, f"tracking.store_dir={store}",
                    f"hydra.launcher.cpus_per_task={(os.cpu_count() or 1) * 8}")  # fmt: skip
    code, out = finish(process, timeout=120)
    assert time.monotonic() - start < 60
    assert code == 1
    assert "cannot schedule" in out and "PartitionConfig" in out and "hydra.launcher.cpus_per_task" in out
    assert not squeue(slurm, "%i")  # cancelled, not left waiting
    parent, (run,) = sweep_record(store)
    assert parent.info.status == "FAILED"
    assert run.info.status == "FAILED" and "PartitionConfig" in run.data.tags[names.ERROR_TAG]
