"""``mnist-exp-ui``: the MLflow UI on the project's store, opened on the newest experiment's runs."""

from __future__ import annotations

import argparse
import sys

from mnist_exp.commands import add_store_option, end_dead_runs, reports_errors, store_uri


@reports_errors
def main(argv: list[str] | None = None) -> int:
    """Start the MLflow UI on the project's store; Ctrl-C stops it."""
    parser = argparse.ArgumentParser(prog="mnist-exp-ui", description=main.__doc__)
    parser.add_argument("--port", type=int, default=5000, help="port to listen on (default 5000)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1, this machine only)")
    add_store_option(parser, "the store to show")
    parser.add_argument(
        "--allowed-hosts", help="beyond loopback: Host headers to answer, comma-separated (default: this machine's)"
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the UI to answer")
    args = parser.parse_args(argv)

    from mnist_exp.schema import NOT_IN_CONFIG_HASH
    from mnist_exp.tracking.servers import exposure_warning, serve, ui_command
    from mnist_exp.tracking.store import check_intact, open_store
    from mnist_exp.tracking.views import landing_page

    uri = store_uri(args)
    check_intact(uri)  # the UI would serve a damaged store, and fail page by page
    client = open_store(uri)
    end_dead_runs(client)
    if warning := exposure_warning(args.host, args.port, authenticated=False):
        print(warning, file=sys.stderr, flush=True)
    command = ui_command(uri, args.host, args.port, args.allowed_hosts)
    return serve(
        command, args.host, args.port, f"MLflow UI for {uri}", args.timeout, landing_page(client, NOT_IN_CONFIG_HASH)
    )


if __name__ == "__main__":
    sys.exit(main())
