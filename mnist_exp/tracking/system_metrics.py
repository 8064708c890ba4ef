"""A run's system metrics (CPU, memory, disk, network; NVIDIA GPUs through pynvml), sampled by MLflow's monitor.

MLflow's ``SystemMetricsMonitor`` is what ``mlflow.start_run(log_system_metrics=True)`` starts;
mnist-exp opens its runs with a client, so it starts the monitor itself, on the run's store.
The metrics are ``system/...`` in the run, at steps 0, 1, ... (a resumed run goes on counting).
They are a view of the machine, not part of the record: a store that refuses them stops the
monitor with MLflow's warning, and they are not journaled.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class SystemMetrics:
    """MLflow's system-metrics monitor for one run, every ``interval_s`` seconds, until ``stop``."""

    def __init__(self, tracking_uri: str, run_id: str, interval_s: float) -> None:
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)  # its start and stop lines are INFO
        self.monitor = SystemMetricsMonitor(
            run_id, sampling_interval=interval_s, resume_logging=True, tracking_uri=tracking_uri
        )
        self.monitor.start()

    def stop(self) -> None:
        """Take no more samples and write what was sampled (idempotent)."""
        self.monitor.finish()
