"""``mnist-exp-reproduce <run id>``: run a recorded experiment again and compare the results."""

from __future__ import annotations

import argparse
import logging
import sys

from mnist_exp.commands import add_store_option, reports_errors, store_client


@reports_errors
def main(argv: list[str] | None = None) -> int:
    """Rebuild a run's config from what it logged, check data and code, run it again, compare."""
    parser = argparse.ArgumentParser(prog="mnist-exp-reproduce", description=main.__doc__)
    parser.add_argument("run_id", help="the run to reproduce")
    add_store_option(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from mnist_exp.reproduce import metric_rows, reproduce, side_by_side

    client = store_client(args)
    original, new = reproduce(client, args.run_id)
    print(f"original {original.info.run_id}  reproduced {new.info.run_id}")
    print(side_by_side(metric_rows(client, original, new)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
