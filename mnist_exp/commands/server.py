"""``mnist-exp-server``: a shared MLflow tracking server (PostgreSQL or SQLite) from conf/server.yaml."""

from __future__ import annotations

import argparse
import sys

from mnist_exp.commands import reports_errors


@reports_errors
def main(argv: list[str] | None = None) -> int:
    """Start a shared MLflow tracking server from conf/server.yaml; overrides as key=value arguments."""
    parser = argparse.ArgumentParser(prog="mnist-exp-server", description=main.__doc__)
    parser.add_argument("overrides", nargs="*", help="e.g. port=5001 backend_store_uri=postgresql://...")
    args = parser.parse_args(argv)

    from mnist_exp.config import compose
    from mnist_exp.tracking.servers import exposure_warning, serve, server_command

    cfg = compose(args.overrides, config_name="server")
    if warning := exposure_warning(cfg.host, cfg.port, authenticated=cfg.app_name == "basic-auth"):
        print(warning, file=sys.stderr, flush=True)
    label = f"MLflow tracking server on {cfg.backend_store_uri}, artifacts in {cfg.artifacts_destination}"
    return serve(server_command(cfg), cfg.host, cfg.port, label, cfg.startup_timeout)


if __name__ == "__main__":
    sys.exit(main())
