"""``mnist-exp-register``: put a run's model (a sweep's: its best job's) in the Model Registry."""

from __future__ import annotations

import sys

from mnist_exp.commands import parse_run_command, reports_errors, store_client


@reports_errors
def main(argv: list[str] | None = None) -> int:
    """Register a run's model (for a sweep's parent run, its best job's) in the Model Registry."""
    args = parse_run_command(
        "mnist-exp-register", main.__doc__, "a training run id, or a sweep's parent run id", argv, epoch=True
    )

    from mnist_exp.tracking.registry import register

    version = register(store_client(args), args.run_id, args.epoch)
    print(f"models:/{version.name}/{version.version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
