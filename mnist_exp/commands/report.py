"""``mnist-exp-report``: rebuild a sweep's summary from MLflow, or compare sweeps and runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mnist_exp.commands import add_store_option, reports_errors


@reports_errors
def main(argv: list[str] | None = None) -> int:
    """One sweep: rebuild its summary (table, figures, the parent's best values) from what MLflow holds.
    Two or more sweeps or runs: compare them (objective distribution, best configuration, best curves)."""
    parser = argparse.ArgumentParser(prog="mnist-exp-report", description=main.__doc__)
    parser.add_argument("sweeps", nargs="+", help="parent run ids or sweep folders (multirun/...), or run ids")
    add_store_option(
        parser, "the MLflow store (default: the sweep folder's, else MLFLOW_TRACKING_URI or the project's)"
    )
    parser.add_argument("--out", type=Path, help="where to write (default: the sweep folder; ./comparison for two)")
    args = parser.parse_args(argv)

    from mnist_exp.config import compose
    from mnist_exp.tracking import liveness, reports
    from mnist_exp.tracking.store import open_existing_store

    cfg = compose()
    first, recorded_uri = reports.sweep_parent(args.sweeps[0])
    client = open_existing_store(args.tracking_uri or recorded_uri or cfg.tracking.uri)
    liveness.end_dead_runs(client, cfg.tracking.dead_after_s)  # a parent whose driver died is KILLED, not RUNNING
    if len(args.sweeps) == 1:
        parent = reports.parent_run(client, first)
        out = args.out or reports.summary_folder(parent)
        running = parent.info.status == "RUNNING"
        reports.publish(client, first, out, cfg.objective, attach=not running)
        if running:
            print(f"the sweep is still running: this summary is partial, and its parent run {first} is left as it is")
        return 0
    out = args.out or Path("comparison")
    print(reports.compare(client, args.sweeps, cfg.objective, out))
    print(f"comparison in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
