"""``mnist-exp``: train one configuration, or sweep many (-m); a thin Hydra wrapper around ``train``."""

from __future__ import annotations

import logging
import math
import os
import signal
import sys

import hydra
from omegaconf import DictConfig

from mnist_exp import errors
from mnist_exp.commands import damaged_store
from mnist_exp.config import check_yaml, searchpath_folders
from mnist_exp.layout import CONFIG_MODULE, CONFIG_NAME, EXPERIMENT_GROUP, group_folder
from mnist_exp.stops import Stopped, raise_if_pending
from mnist_exp.tracking import multirun
from mnist_exp.train import train

log = logging.getLogger(__name__)
finished_runs: list[str] = []  # run ids of single runs (not sweep jobs) that finished in this process


def interrupt(signum: int, frame: object) -> None:
    """SIGTERM (a scheduler's stop, `kill`) ends training the way Ctrl-C does."""
    raise Stopped(signum)


@hydra.main(version_base="1.3", config_path=f"pkg://{CONFIG_MODULE}", config_name=CONFIG_NAME)
def main(cfg: DictConfig) -> float:
    """Train one configuration; return the objective that sweepers optimise.

    In a sweep, a failing job is recorded as a FAILED child run and reported as
    NaN, so the other jobs run to the end and the sweep is still summarised.
    """
    signal.signal(signal.SIGTERM, interrupt)  # in a launcher's worker process too
    try:
        raise_if_pending()  # a sweep stopped while Hydra set this job up
        if multirun.in_sweep():
            from mnist_exp.tracking import sweeps

            try:
                sweeps.stop_if_failing(cfg)
            except sweeps.SweepStoppedError as stopped:
                log.warning("job not launched: %s", stopped)
                return math.nan
        results = train(cfg)
        if not multirun.in_sweep():
            finished_runs.append(results["run_id"])
        return float(results["objective"])
    except KeyboardInterrupt as stop:  # the run is recorded KILLED; no traceback for a deliberate stop
        raise SystemExit(130) from stop  # the stop stays the cause: a launcher may hand its signal on
    except Exception as exc:
        if not multirun.in_sweep():
            if isinstance(exc, errors.UserError) and not errors.wants_traceback():
                raise SystemExit(errors.report(exc)) from None
            if (damaged := damaged_store(exc)) is not None and not errors.wants_traceback():
                raise SystemExit(errors.report(damaged)) from None
            raise
        log.exception("job failed; the sweep goes on")
        from mnist_exp.tracking import sweeps

        sweeps.record_failure(cfg, exc)
        return math.nan


def close_open_sweeps() -> None:
    """End the sweeps a stop or an error left open (their parents KILLED, with the summary of what finished).

    A second Ctrl-C meanwhile exits at once, once the parents are marked: without the summary, in one line.
    """
    if multirun.OPEN_SWEEPS:
        from mnist_exp.tracking import sweeps

        try:
            sweeps.close_interrupted()
        except KeyboardInterrupt:
            print(sweeps.STOPPED_AGAIN, file=sys.stderr)
            raise SystemExit(130) from None


def cli() -> None:
    """The ``mnist-exp`` command: ``main``, and a quick exit after a single run that finished.

    Tearing down the interpreter with TensorFlow loaded takes a while. A finished
    single run has stored everything, so the process ends without that teardown.
    Sweeps (worker pools to stop) and failures exit the usual way. SIGTERM stops
    the process as Ctrl-C does; a sweep it stops ends KILLED with its summary.
    """
    signal.signal(signal.SIGTERM, interrupt)
    try:  # the experiment presets and the user's config folders: a YAML slip is one line, not Hydra's traceback
        check_yaml([group_folder(EXPERIMENT_GROUP), *searchpath_folders(sys.argv[1:])])
    except errors.UserError as exc:
        raise SystemExit(errors.report(exc)) from None
    try:
        main()
    except KeyboardInterrupt:  # a stop before or between runs (imports, composing the config): nothing to record
        close_open_sweeps()
        raise SystemExit(130) from None
    except BaseException:
        close_open_sweeps()
        raise
    for why in multirun.FAILED_SWEEPS.values():
        print(f"error: {why}", file=sys.stderr)
    if multirun.FAILED_SWEEPS:
        raise SystemExit(1)
    if finished_runs:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    cli()
