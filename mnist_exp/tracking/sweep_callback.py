"""The Hydra callback that opens a sweep's MLflow parent run before its jobs and closes it after.

Registered in conf/config.yaml under ``hydra.callbacks``. Hydra builds it for every
run, sweep or not, so it loads MLflow (seconds) only when a sweep starts: a single
run with a config mistake is answered at once.
"""

from __future__ import annotations

import os
import re
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, read_write

from mnist_exp.stops import WorkerStops
from mnist_exp.tracking.multirun import OPEN_SWEEPS
from mnist_exp.tracking.names import PARENT_ENV, SWEPT_ENV, TRACKING_URI_ENV


def quoted(value: str) -> str:
    """``value`` as a quoted string of Hydra's override grammar.

    Hydra reads a backslash as an escape only before a quote (or the closing one), so only
    those backslashes are doubled, and the quotes escaped.
    """
    escaped = re.sub(r"(\\*)('|$)", lambda m: m.group(1) * 2 + ("\\'" if m.group(2) else ""), value)
    return f"'{escaped}'"


def pass_to_jobs(config: DictConfig, env: dict[str, str]) -> None:
    """Set ``env`` in every job of the sweep, wherever it runs.

    Launchers compose each job's config from the sweep's Hydra overrides, and Hydra sets a
    job's ``hydra.job.env_set`` in the process that runs it: a SLURM node, a worker of a Ray
    cluster started before the sweep, as well as a local worker.
    """
    with read_write(config.hydra.overrides):
        config.hydra.overrides.hydra.extend([f"++hydra.job.env_set.{k}={quoted(v)}" for k, v in env.items()])


def swept_keys(config: DictConfig) -> list[str]:
    """The keys a sweep varies: its sweep overrides (``a=1,2``, ``range(...)``), its sweeper's params and
    the keys of their conditional branches."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
    keys = [o.get_key_element().lstrip("+~") for o in parsed if o.is_sweep_override()]
    params = OmegaConf.select(config, "hydra.sweeper.params", default=None) or {}
    branches = OmegaConf.select(config, "hydra.sweeper.conditional", default=None) or {}
    conditional = [key for branch in branches.values() for key in (branch or {}) if not str(key).startswith("~")]
    return list(dict.fromkeys([*keys, *params, *conditional]))


class MlflowSweepCallback(Callback):
    """Opens the sweep's parent run before the jobs and summarises them after.

    If the parent cannot be opened the sweep stops there, loudly (Hydra would
    only warn and run the jobs as orphans). Ctrl-C or SIGTERM is handed to the
    jobs' worker processes first (``WorkerStops``); a sweep stopped is closed by
    ``close_interrupted``: its parent ends KILLED with a summary.
    """

    stops: WorkerStops | None = None  # the sweep's handling of Ctrl-C and SIGTERM while its jobs run

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from mnist_exp import errors
        from mnist_exp.tracking import store, sweeps  # MLflow: loaded for sweeps only

        try:
            run_id = sweeps.open_parent(config)
        except Exception as exc:  # raised here, Hydra would warn and go on
            if errors.wants_traceback():
                raise SystemExit(1) from exc
            raise SystemExit(
                errors.report(exc if isinstance(exc, errors.UserError) else store.store_error(config.tracking.uri, exc))
            ) from None
        os.environ[PARENT_ENV] = run_id
        passed = {PARENT_ENV: run_id, SWEPT_ENV: ",".join(swept_keys(config))}
        pass_to_jobs(config, passed | {k: os.environ[k] for k in (TRACKING_URI_ENV,) if k in os.environ})
        OPEN_SWEEPS[run_id] = config
        self.stops = WorkerStops(config.sweep.stop_grace_s, settled=lambda: sweeps.no_job_running(config, run_id))
        self.stops.install()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from mnist_exp.tracking import sweeps

        if self.stops is not None:
            self.stops.uninstall()
        parent = os.environ.pop(PARENT_ENV, None)
        if parent is not None:
            sweeps.close(config, parent, interrupted=False)
