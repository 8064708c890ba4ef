"""What a run records about itself, and how the runs of a config are found again."""

from __future__ import annotations

import errno
from pathlib import Path

from mnist_exp.errors import WriteError
from mnist_exp.tracking import names
from mnist_exp.tracking.record import RunRecord
from mnist_exp.tracking.runs import died_twin, not_resumable, write_problem
from mnist_exp.tracking.store import open_store


def test_the_run_to_continue_is_one_of_this_config_whose_process_died(tmp_path) -> None:
    client = open_store(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("e")

    def run(digest: str, status: str, reason: str | None, parent: str | None = None) -> str:
        tags = {names.CONFIG_HASH_TAG: digest} | ({names.STOP_REASON_TAG: reason} if reason else {})
        tags |= {names.PARENT_RUN_TAG: parent} if parent else {}
        run_id = client.create_run(experiment, tags=tags).info.run_id
        client.set_terminated(run_id, status)
        return run_id

    run("abc", "KILLED", "Ctrl-C")
    run("abc", "KILLED", "process died (pid 1 on host h)", parent="p")  # a sweep's job: its sweep continues it
    run("other", "KILLED", "process died (pid 2 on host h)")
    dead = run("abc", "KILLED", "process died (pid 3 on host h)")
    assert died_twin(client, experiment, "abc").info.run_id == dead
    not_resumable(client, dead)
    assert died_twin(client, experiment, "abc") is None


def test_a_full_disk_in_an_errors_chain_becomes_one_write_error(tmp_path) -> None:
    record = RunRecord.__new__(RunRecord)
    record.run_id, record.folder = "r1", tmp_path / "runs" / "r1"
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x"))
        except OSError as full:
            raise RuntimeError("saving the checkpoint failed") from full
    except RuntimeError as exc:
        problem = write_problem(exc, record)
    assert isinstance(problem, WriteError)
    assert str(problem) == (
        f"run r1: cannot write {tmp_path / 'x'}: No space left on device. Fix: free space on its disk "
        f"(df {Path(tmp_path / 'runs')}) or point tracking.runs_dir elsewhere, then continue the run with resume=r1"
    )
    assert write_problem(ValueError("no"), record) is None
