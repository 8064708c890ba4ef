"""The console scripts, each a thin parser over library functions; they share one option for the store.

Nothing in the library imports from here.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING

from mnist_exp import errors

if TYPE_CHECKING:
    from mlflow import MlflowClient

# The commands print a line per thing done; MLflow's progress bars for each artifact it fetches are noise there.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def add_store_option(parser: argparse.ArgumentParser, what: str = "the MLflow store") -> None:
    """``--tracking-uri``, the same in every command."""
    parser.add_argument(
        "--tracking-uri", help=f"{what} (default: MLFLOW_TRACKING_URI, else the configured tracking.uri)"
    )


def add_epoch_option(parser: argparse.ArgumentParser) -> None:
    """``--epoch N``: a run's model of that epoch instead of the run's own model (its best epoch's)."""
    parser.add_argument(
        "--epoch", type=int, help="the run's model of this epoch (tracking.checkpoints=every logs each); default: "
        "the run's model, its best epoch's",
    )  # fmt: skip


def parse_run_command(
    prog: str, description: str | None, run_help: str, argv: list[str] | None, epoch: bool = False
) -> argparse.Namespace:
    """The arguments of a command that works on one run: its id, the store option (and ``--epoch``)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("run_id", help=run_help)
    add_store_option(parser)
    if epoch:
        add_epoch_option(parser)
    return parser.parse_args(argv)


def store_uri(args: argparse.Namespace) -> str:
    """The store a command works on: ``--tracking-uri``, else the config's (MLFLOW_TRACKING_URI or the project's)."""
    if args.tracking_uri:
        return args.tracking_uri
    from mnist_exp.config import compose

    return compose().tracking.uri


def store_client(args: argparse.Namespace) -> MlflowClient:
    """A client on the command's store, MLflow's fluent API pointed there too."""
    from mnist_exp.tracking.store import open_client

    return open_client(store_uri(args))


def end_dead_runs(client: MlflowClient) -> None:
    """Mark the store's RUNNING runs whose process died KILLED (``tracking.dead_after_s`` from the config)."""
    from mnist_exp.config import compose
    from mnist_exp.tracking import liveness

    liveness.end_dead_runs(client, compose().tracking.dead_after_s)


def damaged_store(exc: BaseException) -> errors.UserError | None:
    """The one line for an error that a damaged store caused, or None (MLflow is loaded only if it was)."""
    if "mnist_exp.tracking.store" not in sys.modules:
        return None
    from mnist_exp.tracking.store import explain

    return explain(exc)


def reports_errors(command: Callable[[list[str] | None], int]) -> Callable[[list[str] | None], int]:
    """A command whose user errors (config, data, store, model) print one ``error:`` line and exit 1."""

    @wraps(command)
    def run(argv: list[str] | None = None) -> int:
        try:
            return command(argv)
        except errors.UserError as exc:  # errors.report: the submodule commands.report shadows a bare name here
            if errors.wants_traceback():
                raise
            return errors.report(exc)
        except Exception as exc:  # a store damaged past its header fails deep inside MLflow
            if errors.wants_traceback() or (damaged := damaged_store(exc)) is None:
                raise
            return errors.report(damaged)

    return run
