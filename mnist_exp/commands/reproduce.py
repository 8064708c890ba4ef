"""``mnist-exp-reproduce <run id>``: run a recorded experiment again and compare the results."""

from __future__ import annotations

import logging
import sys

from mnist_exp.commands import parse_run_command, reports_errors, store_client


@reports_errors
def main(argv: list[str] | None = None) -> int:
    """Rebuild a run's config from what it logged, check data and code, run it again, compare."""
    args = parse_run_command("mnist-exp-reproduce", main.__doc__, "the run to reproduce", argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from mnist_exp.reproduce import metric_rows, reproduce, side_by_side

    client = store_client(args)
    original, new = reproduce(client, args.run_id)
    print(f"original {original.info.run_id}  reproduced {new.info.run_id}")
    print(side_by_side(metric_rows(client, original, new)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
