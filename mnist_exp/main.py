"""``mnist-exp``: the command-line entry point, a thin Hydra wrapper around ``train``."""

from __future__ import annotations

import gc
import importlib
import logging
import math
import os
import signal
import sys
from collections.abc import Callable

import hydra
from omegaconf import DictConfig

from mnist_exp.config import CONFIG_DIR, CONFIG_NAME

log = logging.getLogger(__name__)
finished_runs: list[str] = []  # run ids of single runs (not sweep jobs) that finished in this process


def interrupt(signum: int, frame: object) -> None:
    """SIGTERM (a scheduler's stop, `kill`) ends training the way Ctrl-C does."""
    raise KeyboardInterrupt(f"signal {signum}")


def load_train() -> Callable[[DictConfig], dict]:
    """``mnist_exp.train.train``, imported the first time with the garbage collector paused.

    TensorFlow, Keras and MLflow make millions of objects that live as long as the
    process, and every full collection walked them all: nine took 1.25 s of a
    two-epoch run. Frozen after the import, they are skipped; collections then look
    only at what the runs allocate. (Frozen once: a later job's garbage stays collectable.)
    """
    if "mnist_exp.train" not in sys.modules:
        gc.disable()
        try:
            importlib.import_module("mnist_exp.train")
        finally:
            gc.freeze()
            gc.enable()
    return sys.modules["mnist_exp.train"].train


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=CONFIG_NAME)
def main(cfg: DictConfig) -> float:
    """Train one configuration; return the objective that sweepers optimise.

    In a sweep, a failing job is recorded as a FAILED child run and reported as
    NaN, so the other jobs run to the end and the sweep is still summarised.
    """
    from mnist_exp import errors, schema, sweep
    from mnist_exp.config import group_options

    signal.signal(signal.SIGTERM, interrupt)  # in a launcher's worker process too
    try:
        if not cfg.get("resume"):  # a resumed run is checked against the config it logged
            schema.validate(cfg, known_datasets=group_options("dataset"))  # before TensorFlow loads: fast errors
        results = load_train()(cfg)
        if not sweep.in_sweep():
            finished_runs.append(results["run_id"])
        return float(results["objective"])
    except KeyboardInterrupt:
        raise SystemExit(130) from None  # the run is recorded KILLED; no traceback for a deliberate stop
    except Exception as exc:
        if not sweep.in_sweep():
            if isinstance(exc, errors.UserError) and not errors.wants_traceback():
                raise SystemExit(errors.report(exc)) from None
            raise
        log.exception("job failed; the sweep goes on")
        sweep.record_failure(cfg, exc)
        return math.nan


def cli() -> None:
    """The ``mnist-exp`` command: ``main``, and a quick exit after a single run that finished.

    Tearing down the interpreter with TensorFlow loaded takes 1-2 s. A finished
    single run has stored everything, so the process ends without that teardown.
    Sweeps (worker pools to stop) and failures exit the usual way. SIGTERM stops
    the process as Ctrl-C does; a sweep it stops ends KILLED with its summary.
    """
    from mnist_exp import sweep

    signal.signal(signal.SIGTERM, interrupt)
    try:
        main()
    except KeyboardInterrupt:  # a stop before or between runs (imports, composing the config): nothing to record
        sweep.close_interrupted()
        raise SystemExit(130) from None
    except BaseException:
        sweep.close_interrupted()
        raise
    if finished_runs:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    cli()
