"""Push what runs journaled while their store was away into the store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from mlflow.exceptions import MlflowException

from mnist_exp.errors import UserError
from mnist_exp.tracking import liveness, store
from mnist_exp.tracking.names import RUN_INFO
from mnist_exp.tracking.record import open_folder


def sync_folder(folder: Path, dead_after_s: float) -> bool:
    """Replay one run folder's journal into its store; True when nothing is left in it.

    A run that is FINISHED in the store afterwards needs its folder no more, and it is removed.
    A run still RUNNING whose process died is marked KILLED, and said so.
    """
    if not (folder / RUN_INFO).is_file():
        raise UserError(f"{folder} is not a run folder (no {RUN_INFO}). Fix: pass a folder under tracking.runs_dir")
    record = open_folder(folder)
    waiting = len(record.pending())
    uri = record.client.tracking_uri
    try:
        store.check_store(uri)
        pushed = record.flush()
    except store.TrackingError as exc:
        print(f"{record.run_id}: {exc}; {waiting} writes stay in {record.journal}")
        return False
    left = len(record.pending())
    if not pushed:
        print(
            f"{record.run_id}: the store {uri} took {waiting - left} of {waiting} writes; "
            f"{left} stay in {record.journal}"
        )
        return False
    try:
        run = record.client.get_run(record.run_id)
    except MlflowException as exc:  # a store replaced, or recovered without this run
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        print(f"{record.run_id}: the store {uri} has no such run; its writes stay in {record.journal}")
        return False
    died = liveness.end_if_dead(record.client, run, dead_after_s)
    status = "KILLED" if died else run.info.status
    print(f"{record.run_id}: {waiting} writes pushed to {uri}; the run is {status}")
    if died:
        print(f"{record.run_id}: was RUNNING, but its {died}. Fix: continue it with mnist-exp resume={record.run_id}")
    if status == "FINISHED":
        shutil.rmtree(folder, ignore_errors=True)
    return True


def run_folders(runs_dir: Path) -> list[Path]:
    """Every run folder under ``runs_dir`` (each holds a ``run.json``)."""
    return sorted(info.parent for info in runs_dir.glob(f"*/{RUN_INFO}"))


def stores_of(folders: list[Path]) -> list[str]:
    """The stores the run folders write to (each once), from their ``run.json``."""
    uris = [
        json.loads((folder / RUN_INFO).read_text())["tracking_uri"]
        for folder in folders
        if (folder / RUN_INFO).is_file()
    ]
    return list(dict.fromkeys(uris))
