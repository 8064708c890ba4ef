"""``mnist-exp-register``: put a run's model (a sweep's: its best job's) in the Model Registry."""

from __future__ import annotations

import argparse
import sys

from mnist_exp.commands import add_store_option, reports_errors, store_client


@reports_errors
def main(argv: list[str] | None = None) -> int:
    """Register a run's model (for a sweep's parent run, its best job's) in the Model Registry."""
    parser = argparse.ArgumentParser(prog="mnist-exp-register", description=main.__doc__)
    parser.add_argument("run_id", help="a training run id, or a sweep's parent run id")
    add_store_option(parser)
    args = parser.parse_args(argv)

    from mnist_exp.tracking.registry import register

    version = register(store_client(args), args.run_id)
    print(f"models:/{version.name}/{version.version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
