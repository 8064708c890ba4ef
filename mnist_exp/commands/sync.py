"""``mnist-exp-sync``: push what runs journaled while their store was away into their stores."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mnist_exp.commands import reports_errors


@reports_errors
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
    from mnist_exp.tracking import liveness
    from mnist_exp.tracking.store import bound_requests, open_existing_store
    from mnist_exp.tracking.sync import run_folders, stores_of, sync_folder

    tracking_cfg = compose().tracking
    bound_requests(tracking_cfg)
    folders = args.folders or run_folders(args.runs_dir or Path(tracking_cfg.runs_dir).expanduser())
    stores = stores_of(folders)  # read first: a folder whose run is whole goes once synced
    results = [sync_folder(folder, tracking_cfg.dead_after_s) for folder in folders]
    for uri in stores:  # a sweep's parent has no folder: its store is asked for dead runs
        liveness.end_dead_runs(open_existing_store(uri), tracking_cfg.dead_after_s)
    print(f"{sum(results)} of {len(results)} runs complete in their stores")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
