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
    from mnist_exp.tracking import reports
    from mnist_exp.tracking.store import open_store

    cfg = compose()
    first, recorded_uri = reports.sweep_parent(args.sweeps[0])
    client = open_store(args.tracking_uri or recorded_uri or cfg.tracking.uri)
    if len(args.sweeps) == 1:
        out = args.out or reports.summary_folder(client, first)
        reports.publish(client, first, out, cfg.objective)
        return 0
    out = args.out or Path("comparison")
    print(reports.compare(client, args.sweeps, cfg.objective, out))
    print(f"comparison in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
