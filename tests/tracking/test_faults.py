"""Faults as they happen: processes racing on a new store, a store locked or stopped mid-run, stops at any moment.

Every test here uses real processes, real signals and real MLflow stores (SQLite, and
an MLflow server on loopback), and checks the record each leaves.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import FAST, free_port, launch, run_module, runs_in, server_command
from mlflow import MlflowClient

from mnist_exp.config import compose
from mnist_exp.train import train

pytestmark = pytest.mark.slow

EPOCH_METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "epoch_time_s")
# A stopped run's checkpoint in the store: the last epoch's model and state, and the best epoch's weights.
CHECKPOINT = {"checkpoint/model.keras", "checkpoint/state.json", "checkpoint/best.weights.h5"}


def steps(client: MlflowClient, run_id: str, metric: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, metric))


def values(client: MlflowClient, run_id: str, metric: str) -> list[float]:
    return [m.value for m in sorted(client.get_metric_history(run_id, metric), key=lambda m: m.step)]


def assert_whole(client: MlflowClient, run_id: str, epochs: int, model: bool = False) -> None:
    """A FINISHED run with every epoch's metrics once, the test metrics, its plots (and its model)."""
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    for metric in EPOCH_METRICS:
        assert steps(client, run_id, metric) == list(range(1, epochs + 1)), metric
    assert {"test_accuracy", "test_loss", "best_val_accuracy", "train_time_s"} <= set(run.data.metrics)
    plots = {a.path for a in client.list_artifacts(run_id, "plots")}
    assert plots == {"plots/learning_curves.png", "plots/confusion_matrix.png"}
    if model:
        import mlflow

        mlflow.set_tracking_uri(client.tracking_uri)
        from mlflow.entities import LoggedModelStatus

        logged = mlflow.search_logged_models(
            experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'", output_format="list"
        )
        assert LoggedModelStatus.READY in [m.status for m in logged]


def wait_for(process: subprocess.Popen, prefix: str, after: str | None = None) -> list[str]:
    """Read the process's output until a line starts with ``prefix`` (once a line held ``after``); return the lines."""
    seen, armed = [], after is None
    for line in process.stdout:
        seen.append(line)
        armed = armed or after in line
        if armed and line.startswith(prefix):
            return seen
    raise AssertionError(f"the process ended before {prefix!r}:\n" + "".join(seen[-40:]))


def finish(process: subprocess.Popen, timeout: float = 120) -> str:
    output = process.stdout.read()
    process.wait(timeout=timeout)
    return output


# Store creation and migration: whoever comes first, once.


def test_processes_started_together_on_a_new_store_all_succeed(tmp_path) -> None:
    """benchmarks/store_race.py, smaller: 4 processes open a new SQLite store at one moment, twice."""
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "store_race.py"
    result = subprocess.run(
        [sys.executable, str(script), "--processes", "4", "--trials", "2", "--no-sweeps"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "2 trials of 4 processes: 0 failures, 0 runs missing" in result.stdout


def test_a_half_migrated_store_is_repaired(tmp_path) -> None:
    from mnist_exp.tracking import store as tracking

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking.open_store(uri)
    with contextlib.closing(sqlite3.connect(tmp_path / "mlflow.db")) as db:  # what an interrupted upgrade leaves
        db.execute("CREATE TABLE _alembic_tmp_tags (key VARCHAR(250))")
        db.commit()
    client = tracking.open_store(uri)
    run = client.create_run("0")
    client.set_terminated(run.info.run_id)
    assert tracking.leftover_migration_tables(tmp_path / "mlflow.db") == []


# Store errors name the store and the fix, within seconds.


def test_store_errors_name_the_store_and_the_fix(tmp_path, synthetic) -> None:
    from mnist_exp.tracking.store import TrackingError

    port = free_port()
    postgres = f"postgresql://mlflow@127.0.0.1:{port}/mlflow"
    start = time.perf_counter()
    with pytest.raises(TrackingError, match=rf"127.0.0.1:{port} within \d+ s .*Fix: start the database"):
        train(compose([*synthetic, *FAST, f"tracking.uri={postgres}"]))
    assert time.perf_counter() - start < 10

    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "mlflow.db").write_bytes(b"this is no database" * 100)
    with pytest.raises(
        TrackingError,
        match=r"the file is damaged \(not a readable SQLite database\).*Fix: recover what it holds with sqlite3 ",
    ):
        train(compose([*synthetic, *FAST, f"tracking.store_dir={damaged}"]))


def test_a_locked_store_is_named_with_the_fix(tmp_path, synthetic) -> None:
    from mnist_exp.tracking import store as tracking

    database = tmp_path / "mlflow.db"
    tracking.open_store(f"sqlite:///{database}")
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        start = time.perf_counter()
        with pytest.raises(tracking.TrackingError, match=r"is locked by another process\. Fix: wait .*fuser"):
            train(compose([*synthetic, *FAST, f"tracking.store_dir={tmp_path}", "tracking.request_timeout_s=2"]))
        elapsed = time.perf_counter() - start
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert elapsed < 10, f"{elapsed:.0f} s"
    print(f"locked store reported in {elapsed:.1f} s")


# A store busy or away while a run trains.


def test_a_lock_held_across_an_epoch_end_loses_nothing(tmp_path, store, synthetic) -> None:
    process = launch(
        tmp_path,
        "mnist_exp.commands.train",
        *synthetic,
        *FAST,
        f"tracking.store_dir={store}",
        "training.epochs=4",
        "training.steps_per_execution=1",
        "training.verbose=2",
    )
    wait_for(process, "Epoch 2/4")
    holder = sqlite3.connect(store / "mlflow.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    time.sleep(8)  # past the end of epoch 2: its metrics wait for the store (a store away is journaled, below)
    holder.execute("ROLLBACK")
    holder.close()
    output = finish(process, timeout=180)
    assert process.returncode == 0, output[-3000:]
    (run,) = runs_in(store)
    assert_whole(MlflowClient(f"sqlite:///{store / 'mlflow.db'}"), run.info.run_id, epochs=4)
    assert not (store / "runs" / run.info.run_id).exists()  # all in the store: the run folder is gone


@contextlib.contextmanager
def tracking_server(tmp_path: Path, port: int) -> Iterator[subprocess.Popen]:
    """mnist-exp-server on a SQLite backend on loopback; stopped with SIGTERM (checked to exit in 5 s)."""
    command = server_command(port, f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "served")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        banner = [process.stdout.readline(), process.stdout.readline()]
        assert f"http://127.0.0.1:{port}" in banner[1], banner
        yield process
    finally:
        stop_within(process, 5)


def server_children(process: subprocess.Popen) -> list[int]:
    result = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True)
    return [int(pid) for pid in result.stdout.split()]


def stop_within(process: subprocess.Popen, seconds: float) -> None:
    """SIGTERM; the process must exit 0 within ``seconds`` and leave no process of the server's group."""
    if process.poll() is not None:
        return
    children = server_children(process)
    start = time.perf_counter()
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert code == 0 and time.perf_counter() - start < seconds
    for child in children:  # the server ran in a session of its own: nothing of it may be left
        assert subprocess.run(["pgrep", "-g", str(child)], capture_output=True).stdout == b""


def server_run(tmp_path: Path, synthetic: list[str], port: int, retry_s: int) -> subprocess.Popen:
    return launch(
        tmp_path,
        "mnist_exp.commands.train",
        *synthetic,
        *FAST,
        "tracking=server",
        f"tracking.uri=http://127.0.0.1:{port}",
        f"tracking.store_dir={tmp_path / 'local'}",  # the run's folder (checkpoint, journal) lives here
        "tracking.log_model=true",
        "tracking.request_timeout_s=2",
        f"tracking.retry_s={retry_s}",
        "training.epochs=6",
        "training.batch_size=8",
        "training.steps_per_execution=1",
        "training.verbose=2",
    )


def only_run(uri: str) -> str:
    client = MlflowClient(uri)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return run.info.run_id


def test_a_server_stopped_during_a_run_and_started_again(tmp_path, synthetic) -> None:
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    with tracking_server(tmp_path, port) as server:
        process = server_run(tmp_path, synthetic, port, retry_s=60)
        wait_for(process, "Epoch 2/6")
        stop_within(server, 5)
        wait_for(process, "Epoch 4/6")
    with tracking_server(tmp_path, port):
        output = finish(process, timeout=240)
        assert process.returncode == 0, output[-3000:]
        assert_whole(MlflowClient(uri), only_run(uri), epochs=6, model=True)


def test_a_server_that_never_comes_back_leaves_a_journal_that_sync_pushes(tmp_path, synthetic) -> None:
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    with tracking_server(tmp_path, port) as server:
        process = server_run(tmp_path, synthetic, port, retry_s=2)
        wait_for(process, "Epoch 2/6")
        stop_within(server, 5)
        start = time.perf_counter()
        output = finish(process, timeout=240)
    assert process.returncode == 0, output[-3000:]
    assert "Push them when it answers again: mnist-exp-sync" in output
    (folder,) = (tmp_path / "local" / "runs").iterdir()
    assert (folder / "journal.jsonl").read_text().count("\n") >= 5
    print(f"the run ended {time.perf_counter() - start:.1f} s after its last epoch began, store away")

    with tracking_server(tmp_path, port):
        result = run_module(tmp_path, "mnist_exp.commands.sync", str(folder))
        assert "the run is FINISHED" in result.stdout
        assert_whole(MlflowClient(uri), folder.name, epochs=6, model=True)
    assert not folder.exists()


def test_the_ui_stops_on_sigterm_within_5_s_leaving_no_process(tmp_path) -> None:
    port = free_port()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = [sys.executable, "-m", "mnist_exp.commands.ui", "--port", str(port), "--tracking-uri", uri]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        banner = [process.stdout.readline(), process.stdout.readline()]
        assert f"http://127.0.0.1:{port}" in banner[1], banner
    finally:
        stop_within(process, 5)


# Stops at any moment, and resume.

MOMENTS = {
    # the output line to send the signal at (once the second line was seen), and a delay after that line
    "before the first epoch ends": ("Epoch 1/3", None, 0.0),
    "mid-training": ("Epoch 3/3", None, 0.0),
    "at the end of the last epoch": ("16/16", "Epoch 3/3", 0.0),
    "while the model is logged": ("16/16", "Epoch 3/3", 0.5),
}
SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}
# SIGKILL (the liveness path) at every moment; Ctrl-C and SIGTERM share one handler, so they take two moments each.
STOPS = [
    *((moment, "SIGKILL") for moment in MOMENTS),
    *((moment, "SIGINT" if i % 2 == 0 else "SIGTERM") for i, moment in enumerate(MOMENTS)),
]


@pytest.mark.parametrize(("moment", "signame"), STOPS)
def test_a_stop_at_any_moment_is_resumed_in_the_same_run(tmp_path, store, synthetic, moment, signame) -> None:
    """Ctrl-C and SIGTERM end the run KILLED within 10 s, to resume by id. After SIGKILL (the OOM killer,
    a lost node) the next start of the same config marks the run KILLED and continues it. Either way the
    run ends FINISHED with each epoch's metrics once, and nothing stays RUNNING."""
    line, after, delay = MOMENTS[moment]
    settings = [
        *synthetic,
        *FAST,
        f"tracking.store_dir={store}",
        "training.epochs=3",
        "training.steps_per_execution=1",
        f"tracking.log_model={moment == 'while the model is logged'}",  # about 2 s of logging after the last epoch
    ]
    process = launch(tmp_path, "mnist_exp.commands.train", *settings, "training.verbose=2")
    wait_for(process, line, after)
    time.sleep(delay)
    signalled = time.monotonic()
    process.send_signal(SIGNALS[signame])
    output = finish(process)
    (run,) = runs_in(store)
    if signame == "SIGKILL":
        assert process.returncode == -signal.SIGKILL
        assert run.info.status == "RUNNING"  # nobody could say otherwise
        resumed = train(compose(settings))  # the same config again
        assert resumed["run_id"] == run.info.run_id
        (run,) = runs_in(store)
        assert run.data.tags["stop.reason"].startswith("process died (pid ")
    else:
        assert time.monotonic() - signalled < 10, output[-3000:]
        assert process.returncode == 130, output[-3000:]
        assert run.info.status == "KILLED"
        assert f"resume={run.info.run_id}" in output
        client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
        checkpoint = {a.path for a in client.list_artifacts(run.info.run_id, "checkpoint")}
        assert checkpoint == (set() if moment == "before the first epoch ends" else CHECKPOINT)
        resumed = train(compose([f"tracking.store_dir={store}", f"resume={run.info.run_id}"]))
        assert resumed["run_id"] == run.info.run_id
    assert [r.info.status for r in runs_in(store)] == ["FINISHED"]
    assert_whole(MlflowClient(f"sqlite:///{store / 'mlflow.db'}"), run.info.run_id, epochs=3,
                 model=moment == "while the model is logged")  # fmt: skip


def test_two_resumes_of_one_run_at_once_one_is_refused_in_one_line(tmp_path, store, synthetic) -> None:
    settings = [*synthetic, *FAST, f"tracking.store_dir={store}", "training.epochs=4", "training.verbose=2"]
    process = launch(tmp_path, "mnist_exp.commands.train", *settings)
    wait_for(process, "Epoch 2/4")
    process.send_signal(signal.SIGINT)
    assert finish(process) and process.returncode == 130
    (run,) = runs_in(store)
    again = [launch(tmp_path, "mnist_exp.commands.train", f"tracking.store_dir={store}", f"resume={run.info.run_id}")
             for _ in range(2)]  # fmt: skip
    outputs = [finish(p) for p in again]
    codes = sorted(p.returncode for p in again)
    assert codes == [0, 1], outputs
    refused = outputs[[p.returncode for p in again].index(1)]
    errors = [line for line in refused.splitlines() if line.startswith("error:")]
    assert errors == [errors[0]] and f"error: run {run.info.run_id} is being resumed by pid " in errors[0], refused
    assert "Traceback" not in refused
    (run,) = runs_in(store)
    assert "error" not in run.data.tags
    assert_whole(MlflowClient(f"sqlite:///{store / 'mlflow.db'}"), run.info.run_id, epochs=4)


def test_sync_marks_a_run_whose_process_was_killed_and_says_how_to_continue_it(tmp_path, store, synthetic) -> None:
    process = launch(tmp_path, "mnist_exp.commands.train", *synthetic, *FAST, f"tracking.store_dir={store}",
                     "training.epochs=3", "training.verbose=2")  # fmt: skip
    wait_for(process, "Epoch 2/3")
    process.kill()
    process.wait()
    result = run_module(tmp_path, "mnist_exp.commands.sync", "--runs-dir", str(store / "runs"))
    (run,) = runs_in(store)
    assert run.info.status == "KILLED"
    assert f"was RUNNING, but its process died (pid {process.pid} on host" in result.stdout
    assert f"resume={run.info.run_id}" in result.stdout


@contextlib.contextmanager
def small_disk(folder: Path, size: str = "8m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``folder`` (root only), unmounted after."""
    folder.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


@pytest.mark.parametrize("full", ["the run folder's disk", "the store's disk"])
def test_a_full_disk_ends_the_run_in_one_line_and_resume_logs_each_epoch_once(tmp_path, synthetic, full) -> None:
    with small_disk(tmp_path / "small") as disk:
        store = disk if full == "the store's disk" else tmp_path / "mlruns"
        settings = [
            *synthetic,
            *FAST,
            f"tracking.store_dir={store}",
            f"tracking.runs_dir={disk / 'runs'}",
            "training.epochs=4",
            "training.steps_per_execution=1",
            "tracking.retry_s=600",
        ]  # fmt: skip  (a full disk is not waited for)
        process = launch(tmp_path, "mnist_exp.commands.train", *settings, "training.verbose=2")
        wait_for(process, "Epoch 2/4")
        subprocess.run(["dd", "if=/dev/zero", f"of={disk / 'filler'}", "bs=64k"], capture_output=True)
        filled = time.monotonic()
        output = finish(process)
        assert time.monotonic() - filled < 10
        assert process.returncode == 1, output[-3000:]
        assert "Traceback" not in output and "ERROR" not in output
        (error,) = [line for line in output.splitlines() if line.startswith("error:")]
        assert "No space left on device. Fix: free space on its disk" in error
        (run_id,) = [r.info.run_id for r in runs_in(store)] if full != "the store's disk" else [error.split()[2][:-1]]
        assert error.endswith(f"then continue the run with resume={run_id}")
        if full == "the run folder's disk":
            (run,) = runs_in(store)
            assert run.info.status == "FAILED" and "No space left on device" in run.data.tags["error"]
        (disk / "filler").unlink()
        run_module(tmp_path, "mnist_exp.commands.train", f"tracking.store_dir={store}",
                   f"tracking.runs_dir={disk / 'runs'}", f"resume={run_id}")  # fmt: skip
        assert [r.info.status for r in runs_in(store)] == ["FINISHED"]
        client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
        for metric in EPOCH_METRICS:
            assert steps(client, run_id, metric) == [1, 2, 3, 4], metric


def test_a_damaged_checkpoint_falls_back_to_the_stores_copy_or_gets_one_line(tmp_path, store, synthetic) -> None:
    """A truncated model file with an intact copy in the store: resumed from that copy. A cut state file
    with no copy in the store (the process was killed outright): one line."""
    settings = [*synthetic, *FAST, f"tracking.store_dir={store}", "training.verbose=2"]
    process = launch(tmp_path, "mnist_exp.commands.train", *settings, "training.epochs=6")
    killed = launch(tmp_path, "mnist_exp.commands.train", *settings, "training.epochs=60")  # far from its end
    wait_for(process, "Epoch 3/6")
    process.send_signal(signal.SIGINT)  # KILLED: the checkpoint of epoch 2 goes to the store too
    finish(process)
    wait_for(killed, "Epoch 3/60")
    killed.kill()
    killed.wait()
    (stopped,) = [r for r in runs_in(store) if r.info.status == "KILLED"]
    (dead,) = [r for r in runs_in(store) if r.info.status == "RUNNING"]
    model = store / "runs" / stopped.info.run_id / "checkpoint" / "model.keras"
    model.write_bytes(model.read_bytes()[:1000])
    (store / "runs" / dead.info.run_id / "checkpoint" / "state.json").write_text('{"epochs_done": 2, "hist')

    run_module(tmp_path, "mnist_exp.commands.train", f"tracking.store_dir={store}", f"resume={stopped.info.run_id}")
    assert_whole(MlflowClient(f"sqlite:///{store / 'mlflow.db'}"), stopped.info.run_id, epochs=6)
    result = subprocess.run(
        [sys.executable, "-m", "mnist_exp.commands.train", f"tracking.store_dir={store}", f"resume={dead.info.run_id}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    (error,) = [line for line in result.stderr.splitlines() if "damaged" in line or line.startswith("error")]
    assert error.startswith(f"error: resume: run {dead.info.run_id}'s checkpoint is damaged (")
    assert "state.json cannot be read (JSONDecodeError)) and the store has no intact copy. Fix: move" in error
    assert MlflowClient(f"sqlite:///{store / 'mlflow.db'}").get_run(dead.info.run_id).info.status == "KILLED"


def damage_table(database: Path, table: str) -> None:
    """Overwrite the first page of ``table``'s B-tree with noise: the file's header and schema stay readable."""
    with contextlib.closing(sqlite3.connect(database)) as connection:
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
        (root,) = connection.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    with database.open("r+b") as file:
        file.seek((root - 1) * page_size)
        file.write(os.urandom(page_size))


def test_a_store_damaged_past_its_header_gets_one_line_from_every_command(tmp_path, synthetic, trained_run) -> None:
    results, trained = trained_run
    store = tmp_path / "mlruns"
    store.mkdir()
    shutil.copyfile(trained / "mlflow.db", store / "mlflow.db")
    for table in ("runs", "metrics", "latest_metrics"):  # a damaged runs table reads as if the run were not there
        damage_table(store / "mlflow.db", table)
    uri = f"sqlite:///{store / 'mlflow.db'}"
    run_id = results["run_id"]
    picture = tmp_path / "digit.npy"
    np.save(picture, np.zeros((28, 28), dtype=np.float32))
    commands = {
        "train": ["mnist_exp.commands.train", *synthetic, *FAST, f"tracking.store_dir={store}", "training.epochs=1"],
        "report": ["mnist_exp.commands.report", run_id, run_id, "--tracking-uri", uri],
        "ui": ["mnist_exp.commands.ui", "--tracking-uri", uri, "--port", str(free_port())],
        "predict": ["mnist_exp.commands.predict", "--model", run_id, "--tracking-uri", uri, str(picture)],
        "register": ["mnist_exp.commands.register", run_id, "--tracking-uri", uri],
        "reproduce": ["mnist_exp.commands.reproduce", run_id, "--tracking-uri", uri],
    }
    for name, args in commands.items():
        result = subprocess.run([sys.executable, "-m", *args], cwd=tmp_path, capture_output=True, text=True,
                                timeout=300, env=os.environ | {"HYDRA_FULL_ERROR": "0"})  # fmt: skip
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert result.returncode == 1, (name, result.stderr[-3000:])
        assert "Traceback" not in result.stderr, (name, result.stderr[-3000:])
        assert len(errors) == 1 and errors[0].startswith(f"error: tracking store {uri}: the file is damaged"), name
        assert f"sqlite3 {store / 'mlflow.db'} .recover" in errors[0], name


def test_a_stop_while_importing_records_nothing(tmp_path, store, synthetic) -> None:
    process = launch(tmp_path, "mnist_exp.commands.train", *synthetic, *FAST, f"tracking.store_dir={store}")
    time.sleep(1.5)  # Python is importing Hydra, composing the config, or importing TensorFlow
    process.send_signal(signal.SIGTERM)
    output = finish(process)
    # 130 once mnist-exp handles SIGTERM; before that (importing Hydra), SIGTERM's default action
    assert process.returncode in (130, -signal.SIGTERM), output[-3000:]
    assert "Traceback" not in output
    assert runs_in(store) == []


def test_deterministic_run_stopped_and_resumed_matches_an_uninterrupted_one(tmp_path, synthetic) -> None:
    """Every run in a process of its own, so all three compute with the same thread pools."""
    settings = [*synthetic, *FAST, "training.epochs=3", "training.deterministic=true", "training.verbose=2"]
    whole, store = tmp_path / "whole", tmp_path / "stopped"
    run_module(tmp_path, "mnist_exp.commands.train", *settings, f"tracking.store_dir={whole}")

    process = launch(tmp_path, "mnist_exp.commands.train", *settings, f"tracking.store_dir={store}")
    wait_for(process, "Epoch 2/3")  # one epoch done
    process.send_signal(signal.SIGINT)
    output = finish(process)
    assert process.returncode == 130, output[-3000:]
    (stopped,) = runs_in(store)
    assert stopped.info.status == "KILLED"
    run_module(tmp_path, "mnist_exp.commands.train", f"tracking.store_dir={store}", f"resume={stopped.info.run_id}")

    (original,) = runs_in(whole)
    (resumed,) = runs_in(store)
    assert resumed.info.status == "FINISHED"
    before, after = (MlflowClient(f"sqlite:///{folder / 'mlflow.db'}") for folder in (whole, store))
    for metric in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
        assert values(after, resumed.info.run_id, metric) == values(before, original.info.run_id, metric), metric
    assert resumed.data.metrics["test_loss"] == original.data.metrics["test_loss"]


# Sweeps end with a status.


def test_an_interrupted_sweep_ends_killed_with_a_summary(tmp_path, store, synthetic) -> None:
    process = launch(
        tmp_path,
        "mnist_exp.commands.train",
        "-m",
        *synthetic,
        *FAST,
        f"tracking.store_dir={store}",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        "training.epochs=3",
        "training.steps_per_execution=1",
        "training.verbose=2",
        "optimizer.learning_rate=0.001,0.002,0.003",
    )
    wait_for(process, "Epoch 2/3", after="[HYDRA] \t#1 :")
    process.send_signal(signal.SIGINT)
    output = finish(process)
    assert process.returncode == 130, output[-3000:]
    runs = runs_in(store)
    (parent,) = [r for r in runs if r.data.tags.get("sweep.role") == "parent"]
    jobs = sorted((r for r in runs if r is not parent), key=lambda r: r.data.tags["sweep.job"])
    assert parent.info.status == "KILLED"
    assert [r.info.status for r in jobs] == ["FINISHED", "KILLED"]
    assert parent.data.metrics["jobs_finished"] == 1
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "summary")} == {
        "summary/summary.csv",
        "summary/summary.md",
        "summary/comparison.png",
    }


@pytest.mark.parametrize("presses", ["one", "two at once", "the second while the sweep closes"])
def test_ctrl_c_on_a_parallel_sweep_ends_it_within_10_s_in_a_few_lines(tmp_path, store, synthetic, presses) -> None:
    """One Ctrl-C: the workers' runs end KILLED with their checkpoints and the parent KILLED with the summary of
    what finished (nothing, here). A second Ctrl-C, at once or while the driver writes the summary, still
    leaves no run RUNNING."""
    process = launch(tmp_path, "mnist_exp.commands.train", "-m", *synthetic, *FAST, f"tracking.store_dir={store}",
                     f"hydra.sweep.dir={tmp_path / 'sweep'}", "training.epochs=200", "training.verbose=2",
                     "launcher=local_parallel", "optimizer.learning_rate=0.001,0.002")  # fmt: skip
    seen = wait_for(process, "Epoch 3/200")
    seen += wait_for(process, "Epoch 3/200")  # both workers train
    process.send_signal(signal.SIGINT)
    pressed, output = time.monotonic(), ""
    if presses == "two at once":
        time.sleep(0.2)
        process.send_signal(signal.SIGINT)
    if presses == "the second while the sweep closes":
        for line in process.stdout:  # each worker says its run ended; then the driver marks and summarises
            output += line
            if output.count("ends KILLED; continue it with resume=") == 2:
                break
        process.send_signal(signal.SIGINT)
    output += finish(process, timeout=60)
    assert time.monotonic() - pressed < 10
    assert process.returncode == 130, output[-3000:]
    assert "Traceback" not in output and "AttributeError" not in output, output[-3000:]
    assert len([line for line in output.splitlines() if not line.startswith(("Epoch", "16/16"))]) <= 25, output
    runs = runs_in(store)
    (parent,) = [r for r in runs if r.data.tags.get("sweep.role") == "parent"]
    jobs = [r for r in runs if r is not parent]
    assert parent.info.status == "KILLED"
    assert [r.info.status for r in jobs] == ["KILLED", "KILLED"]
    if presses == "one":
        assert "0 finished, 0 failed" in output
        assert "| 0 | - | optimizer.learning_rate=0.001 | - |" in output
        assert parent.data.metrics["jobs_finished"] == 0
        client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
        for job in jobs:
            assert {a.path for a in client.list_artifacts(job.info.run_id, "checkpoint")} == CHECKPOINT


def test_a_sweep_whose_driver_was_killed_is_marked_by_the_next_command(tmp_path, store, synthetic) -> None:
    process = launch(tmp_path, "mnist_exp.commands.train", "-m", *synthetic, *FAST, f"tracking.store_dir={store}",
                     f"hydra.sweep.dir={tmp_path / 'sweep'}", "training.epochs=200", "training.verbose=2",
                     "optimizer.learning_rate=0.001,0.002")  # fmt: skip
    wait_for(process, "Epoch 2/200")
    process.kill()
    process.wait()
    assert sorted(r.info.status for r in runs_in(store)) == ["RUNNING", "RUNNING"]
    run_module(tmp_path, "mnist_exp.commands.sync", "--runs-dir", str(store / "runs"))
    runs = runs_in(store)
    assert [r.info.status for r in runs] == ["KILLED", "KILLED"]
    assert all(r.data.tags["stop.reason"].startswith("process died (pid ") for r in runs)


def test_a_sweep_whose_parent_cannot_be_opened_runs_no_job(tmp_path, synthetic) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mnist_exp.commands.train",
            "-m",
            *synthetic,
            *FAST,
            f"tracking.uri={uri}",
            "optimizer.learning_rate=1,2",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | {"HYDRA_FULL_ERROR": "0"},
    )
    assert result.returncode == 1
    assert f"error: tracking store {uri} cannot be reached" in result.stderr
    assert "Traceback" not in result.stderr
    assert "#0 :" not in result.stdout + result.stderr  # no job was launched


# A diverged run is marked.


def test_a_diverged_run_ends_failed_with_the_epoch(tmp_path, synthetic) -> None:
    from mnist_exp.callbacks import DivergedError

    with pytest.raises(DivergedError, match="loss nan at epoch 1"):
        train(
            compose(
                [
                    *synthetic,
                    *FAST,
                    f"tracking.store_dir={tmp_path}",
                    "optimizer.learning_rate=1e30",
                    "training.epochs=3",
                ]
            )
        )
    (run,) = runs_in(tmp_path)
    assert run.info.status == "FAILED"
    assert run.data.tags["error"] == "diverged"
    assert run.data.tags["error.epoch"] == "1"
    assert steps(MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}"), run.info.run_id, "train_loss") == [1]
