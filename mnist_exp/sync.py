"""``mnist-exp-sync``: push what runs journaled while their store was away into the store."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from mnist_exp.errors import UserError, report


def sync_folder(folder: Path) -> bool:
    """Replay one run folder's journal into its store; True when nothing is left in it.

    A run that is FINISHED in the store afterwards needs its folder no more, and it is removed.
    """
    from mnist_exp import tracking
    from mnist_exp.tracking.record import RUN_INFO, open_folder

    if not (folder / RUN_INFO).is_file():
        raise UserError(f"{folder} is not a run folder (no {RUN_INFO}). Fix: pass a folder under tracking.runs_dir")
    record = open_folder(folder)
    waiting = len(record.pending())
    uri = record.client.tracking_uri
    try:
        tracking.check_store(uri)
        pushed = record.flush()
    except tracking.TrackingError as exc:
        print(f"{record.run_id}: {exc}; {waiting} writes stay in {record.journal}")
        return False
    left = len(record.pending())
    if not pushed:
        print(
            f"{record.run_id}: the store {uri} took {waiting - left} of {waiting} writes; "
            f"{left} stay in {record.journal}"
        )
        return False
    status = record.client.get_run(record.run_id).info.status
    print(f"{record.run_id}: {waiting} writes pushed to {uri}; the run is {status}")
    if status == "FINISHED":
        shutil.rmtree(folder, ignore_errors=True)
    return True


def main(argv: list[str] | None = None) -> int:
    """Push the journals of runs whose store was away (a lock, an outage) into their stores."""
    parser = argparse.ArgumentParser(prog="mnist-exp-sync", description=main.__doc__)
    parser.add_argument(
        "folders", nargs="*", type=Path, help="run folders (default: every run under tracking.runs_dir)"
    )
    parser.add_argument(
        "--runs-dir", type=Path, help="where the run folders are (default: the config's tracking.runs_dir)"
    )
    args = parser.parse_args(argv)
    from mnist_exp.config import compose
    from mnist_exp.tracking import bound_requests
    from mnist_exp.tracking.record import RUN_INFO

    tracking_cfg = compose().tracking
    bound_requests(tracking_cfg)
    runs_dir = args.runs_dir or Path(tracking_cfg.runs_dir).expanduser()
    folders = args.folders or sorted(info.parent for info in runs_dir.glob(f"*/{RUN_INFO}"))
    try:
        results = [sync_folder(folder) for folder in folders]
    except UserError as exc:
        return report(exc)
    print(f"{sum(results)} of {len(results)} runs complete in their stores")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
