"""``mnist-exp-migrate``: copy experiments and runs from one MLflow store into another.

For moving the local SQLite store onto a shared tracking server. Each run keeps its
name, status, times, params, tags, full metric histories and artifacts; sweep
children stay under their parent. Copies are tagged ``migrated_from`` with the
source run id, so running the command again copies only what is new. Logged model
entities (MLflow 3's LoggedModel) are not copied: register or log them again.
"""

from __future__ import annotations

import argparse
import sys

from mnist_exp.commands import reports_errors, store_uri


@reports_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mnist-exp-migrate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--to", required=True, help="the target tracking URI, e.g. http://127.0.0.1:5000")
    parser.add_argument(
        "--from", dest="tracking_uri", help="the source store (default: MLFLOW_TRACKING_URI, else the project's)"
    )
    parser.add_argument("--experiment", action="append", help="copy only this experiment (repeatable)")
    args = parser.parse_args(argv)

    from mlflow import MlflowClient

    from mnist_exp.tracking.migrate import migrate
    from mnist_exp.tracking.store import sqlite_path

    source_uri = store_uri(args)
    if (database := sqlite_path(source_uri)) is not None and not database.exists():
        parser.error(f"no store at {source_uri}")
    copied = migrate(MlflowClient(source_uri), MlflowClient(args.to), args.experiment)
    print(f"{copied} runs copied from {source_uri} to {args.to}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
