"""A run's system metrics, sampled by MLflow's own monitor while the run lives."""

from __future__ import annotations

import time

from mlflow import MlflowClient

from mnist_exp.tracking.system_metrics import SystemMetrics


def test_samples_are_stepped_from_zero_and_stop_when_asked(store_uri) -> None:
    client = MlflowClient(store_uri)
    run_id = client.create_run(client.create_experiment("e")).info.run_id
    monitor = SystemMetrics(store_uri, run_id, interval_s=0.2)
    time.sleep(0.9)
    monitor.stop()
    monitor.stop()  # a second stop (the run's end after a failed write) is harmless
    steps = sorted(m.step for m in client.get_metric_history(run_id, "system/cpu_utilization_percentage"))
    assert len(steps) >= 2 and steps == list(range(len(steps)))
    time.sleep(0.4)
    assert len(client.get_metric_history(run_id, "system/cpu_utilization_percentage")) == len(steps)
