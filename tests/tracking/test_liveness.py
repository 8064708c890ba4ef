"""Runs whose process died are found and marked, and one process at a time owns a run (real processes, real stores)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from mnist_exp.tracking import liveness, names
from mnist_exp.tracking.store import open_store


def new_store(tmp_path: Path) -> MlflowClient:
    return open_store(f"sqlite:///{tmp_path / 'mlflow.db'}")


def new_run(client: MlflowClient, tags: dict[str, str], status: str = "RUNNING") -> str:
    experiment = client.create_experiment(f"e{time.monotonic_ns()}")
    run_id = client.create_run(experiment, tags=tags).info.run_id
    if status != "RUNNING":
        client.set_terminated(run_id, status)
    return run_id


def gone_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def owner(pid: int, host: str | None = None, started: str | None = None) -> str:
    me = liveness.Owner.me()
    return str(liveness.Owner(host or me.host, me.namespace, pid, started or liveness.process_started(pid) or "1"))


def test_an_owner_is_dead_when_its_process_is_gone_or_its_pid_was_reused() -> None:
    alive = {names.OWNER_TAG: str(liveness.Owner.me())}
    assert liveness.death(alive, dead_after_s=1) is None
    gone = gone_pid()
    assert (
        liveness.death({names.OWNER_TAG: owner(gone, started="1")}, 1)
        == f"process died (pid {gone} on host {liveness.Owner.me().host})"
    )
    reused = {names.OWNER_TAG: owner(liveness.Owner.me().pid, started="12345")}  # this pid, another start time
    assert liveness.death(reused, 1).startswith("process died")
    assert liveness.death({}, 1) is None  # runs recorded before owners were are not judged


def test_an_owner_elsewhere_is_dead_once_its_heartbeat_is_older_than_the_limit() -> None:
    now = liveness.now_ms()
    elsewhere = {names.OWNER_TAG: owner(4242, host="another-host", started="7")}
    assert liveness.death(elsewhere | {names.HEARTBEAT_TAG: str(now - 10_000)}, dead_after_s=60) is None
    reason = liveness.death(elsewhere | {names.HEARTBEAT_TAG: str(now - 120_000)}, dead_after_s=60)
    assert reason == "process died (no heartbeat from pid 4242 on host another-host for 120 s)"


def test_dead_runs_are_marked_killed_and_live_ones_left_running(tmp_path) -> None:
    client = new_store(tmp_path)
    dead = new_run(client, {names.OWNER_TAG: owner(gone_pid(), started="1"), names.HEARTBEAT_TAG: "1000"})
    live = new_run(client, liveness.owner_tags())
    legacy = new_run(client, {})
    assert liveness.end_dead_runs(client, dead_after_s=60) == [dead]
    run = client.get_run(dead)
    assert run.info.status == "KILLED"
    assert run.info.end_time == 1000  # its last heartbeat
    assert run.data.tags[names.STOP_REASON_TAG].startswith("process died (pid ")
    assert [client.get_run(r).info.status for r in (live, legacy)] == ["RUNNING", "RUNNING"]


def test_a_live_owner_is_refused_with_its_pid_and_a_dead_ones_run_is_taken_over(tmp_path) -> None:
    client = new_store(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        busy = new_run(client, {names.OWNER_TAG: owner(holder.pid)})
        with pytest.raises(liveness.RunBusyError, match=f"run {busy} is being resumed by pid {holder.pid} on host"):
            liveness.claim(client, busy, dead_after_s=60)
    finally:
        holder.kill()
        holder.wait()
    assert liveness.claim(client, busy, dead_after_s=60).startswith("process died")
    assert client.get_run(busy).data.tags[names.OWNER_TAG] == str(liveness.Owner.me())
    finished = new_run(client, {}, status="FINISHED")
    with pytest.raises(liveness.UserError, match="already FINISHED"):
        liveness.claim(client, finished, dead_after_s=60)


CLAIMER = textwrap.dedent(
    """
    import pathlib, sys, time
    from mnist_exp.tracking import liveness
    from mnist_exp.tracking.store import open_store
    client = open_store(sys.argv[1])
    pathlib.Path(sys.argv[3] + ".ready." + str(id(client))).touch()
    while not pathlib.Path(sys.argv[3]).exists():  # all start together, once each has imported MLflow
        time.sleep(0.001)
    try:
        liveness.claim(client, sys.argv[2], dead_after_s=60)
        print("won", flush=True)
        time.sleep(1)  # the winner stays alive a moment: its claim holds
    except liveness.RunBusyError:
        print("busy", flush=True)
    """
)


@pytest.mark.slow  # starts processes together: the full suite
def test_of_processes_claiming_one_run_at_the_same_moment_exactly_one_wins(tmp_path) -> None:
    client = new_store(tmp_path)
    run_id = new_run(client, {}, status="KILLED")
    go = tmp_path / "go"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, client.tracking_uri, run_id, str(go)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("go.ready.*"))) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    go.touch()
    outcomes = sorted(racer.communicate(timeout=60)[0].strip() for racer in racers)
    assert outcomes == ["busy", "busy", "busy", "won"]
    assert client.get_run(run_id).info.status == "RUNNING"


def test_the_heartbeat_is_written_every_interval_and_when_poked(tmp_path) -> None:
    client = new_store(tmp_path)
    run_id = new_run(client, {})
    heart = liveness.Heartbeat(client, run_id, interval_s=0.2)
    time.sleep(0.6)
    first = int(client.get_run(run_id).data.tags[names.HEARTBEAT_TAG])
    time.sleep(0.5)
    assert int(client.get_run(run_id).data.tags[names.HEARTBEAT_TAG]) > first
    heart.stop()
    heart = liveness.Heartbeat(client, run_id, interval_s=60)
    before = client.get_run(run_id).data.tags[names.HEARTBEAT_TAG]
    heart.poke()
    time.sleep(0.3)
    heart.stop()
    assert client.get_run(run_id).data.tags[names.HEARTBEAT_TAG] != before
