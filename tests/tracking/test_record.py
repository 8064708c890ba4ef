"""A run's record: writes journaled while the store is locked, pushed once it answers, each once."""

from __future__ import annotations

import random
import signal
import threading
import time
from pathlib import Path

import pytest
from helpers import free_port
from mlflow import MlflowClient

from mnist_exp.stops import Stopped
from mnist_exp.tracking.record import RunRecord, first_line, is_hopeless, open_folder
from mnist_exp.tracking.store import check_sqlite_writable, open_store


def test_writes_journaled_while_the_store_is_away_are_pushed_in_order_once(tmp_path, monkeypatch) -> None:
    """The run's writes go to a server that does not answer, then its journal is replayed into the real store."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    client = open_store(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_id = client.create_run(client.create_experiment("e")).info.run_id
    away = MlflowClient(f"http://127.0.0.1:{free_port()}")
    record = RunRecord(away, run_id, tmp_path / "run", retry_s=0.2)
    record.log_metrics({"train_loss": 1.0}, step=1)
    record.log_metrics({"train_loss": 0.5}, step=2)
    record.set_tags({"note": "while away"})
    assert [entry["op"] for entry in record.pending()] == ["batch", "batch", "batch"]
    assert record.logged_steps("train_loss", if_unreadable={1}) == {
        1,
        2,
    }  # the store's (taken as given) and the journal's

    back = open_folder(tmp_path / "run", client)  # the store answers again
    assert back.flush() and back.pending() == []
    back.log_metrics({"train_loss": 0.25}, step=3)
    history = client.get_metric_history(run_id, "train_loss")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [(1, 1.0), (2, 0.5), (3, 0.25)]
    assert client.get_run(run_id).data.tags["note"] == "while away"
    assert back.logged_steps("train_loss", if_unreadable=set()) == {1, 2, 3}


def test_a_stop_at_any_moment_of_a_write_waits_for_it_and_leaves_the_store_free(store_uri, tmp_path) -> None:
    """SIGTERM at random moments of a run's writes to SQLite: each stop lands once the write it came
    during is in the store, and the store stays free. Raised inside the database client's call, a stop
    once left a transaction open that the run's own KILLED status then waited on for minutes (CI)."""
    database = Path(store_uri.removeprefix("sqlite:///"))
    client = open_store(store_uri)
    run_id = client.create_run("0").info.run_id
    record = RunRecord(client, run_id, tmp_path / "run", retry_s=5)

    def interrupt(signum: int, frame: object) -> None:
        raise Stopped(signum)

    previous, step, returned = signal.signal(signal.SIGTERM, interrupt), 0, []
    try:
        for _ in range(20):
            record.stopping.clear()
            main = threading.main_thread().ident
            timer = threading.Timer(random.uniform(0, 0.03), signal.pthread_kill, (main, signal.SIGTERM))
            timer.start()
            with pytest.raises(Stopped):
                while True:
                    step += 1
                    record.log_metrics({"m": float(step)}, step=step)
                    returned.append(step)
            timer.join()
            check_sqlite_writable(store_uri, database, timeout=0.1)  # no lock left: a write can begin at once
    finally:
        signal.signal(signal.SIGTERM, previous)
    stored = [m.step for m in client.get_metric_history(run_id, "m")]
    assert len(stored) == len(set(stored)) and set(returned) <= set(stored)
    assert len(set(range(1, step + 1)) - set(stored)) <= 20  # at most the step each stop came before
    assert record.pending() == []  # nothing waited on a lock


def test_a_full_or_damaged_store_is_not_waited_for_and_its_error_reads_in_one_line() -> None:
    error = Exception(
        "(raised as a result of Query-invoked autoflush; ...)\n"
        "(sqlite3.OperationalError) database or disk is full\n[SQL: INSERT ...]"
    )
    assert is_hopeless(error)
    assert first_line(error) == "(sqlite3.OperationalError) database or disk is full"
    assert not is_hopeless(Exception("database is locked"))


@pytest.mark.slow  # seconds of sampling
def test_a_runs_system_metrics_are_sampled_while_it_runs_and_go_on_counting_when_resumed(tmp_path) -> None:
    client = open_store(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_id = client.create_run(client.create_experiment("e")).info.run_id
    cpu, memory = "system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"

    def steps(metric: str) -> list[int]:
        return sorted(m.step for m in client.get_metric_history(run_id, metric))

    record = RunRecord(client, run_id, tmp_path / "run", retry_s=0.2, system_metrics_s=0.2)
    time.sleep(1.2)
    record.terminate("KILLED")
    first = steps(cpu)
    assert len(first) >= 3 and first == list(range(len(first))), first
    assert all(0 <= m.value <= 100 for m in client.get_metric_history(run_id, cpu))
    assert max(m.value for m in client.get_metric_history(run_id, memory)) > 0
    time.sleep(0.5)
    assert steps(cpu) == first  # stopped with the run

    client.update_run(run_id, "RUNNING")  # resumed: the steps go on after the last
    resumed = RunRecord(client, run_id, tmp_path / "run", retry_s=0.2, system_metrics_s=0.2)
    time.sleep(0.7)
    resumed.terminate("FINISHED")
    assert steps(cpu)[: len(first) + 1] == list(range(len(first) + 1))

    quiet = RunRecord(client, run_id, tmp_path / "quiet", retry_s=0.2)  # tracking.system_metrics=false
    assert quiet.system is None
