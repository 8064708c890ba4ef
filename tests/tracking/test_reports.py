"""A sweep's summary: one row per job, the swept params, the best finished job."""

from __future__ import annotations

import json

import pytest
from mlflow import MlflowClient

from mnist_exp.errors import UserError
from mnist_exp.tracking import names, reports

OBJECTIVE = {"metric": "best_val_accuracy", "direction": "maximize"}


def sweep(client: MlflowClient, jobs: list[tuple[str, float | None, str]]) -> str:
    """A parent and its jobs: (learning rate, objective or None, status)."""
    experiment = client.create_experiment("sweep")
    parent = client.create_run(experiment).info.run_id
    for number, (rate, value, status) in enumerate(jobs):
        tags = {names.PARENT_RUN_TAG: parent, names.SWEEP_JOB_TAG: str(number)}
        run = client.create_run(experiment, tags=tags).info.run_id
        client.log_param(run, "optimizer.learning_rate", rate)
        client.log_param(run, "training.epochs", 3)
        client.log_param(run, "tracking.uri", f"sqlite:///{number}")  # differs, but is not swept
        if value is not None:
            client.log_metric(run, OBJECTIVE["metric"], value)
        client.set_terminated(run, status)
    return parent


def test_the_summary_ranks_the_finished_jobs_and_keeps_the_failed_ones(store_uri) -> None:
    client = MlflowClient(store_uri)
    parent = sweep(client, [("0.01", 0.91, "FINISHED"), ("0.003", 0.95, "FINISHED"), ("0.1", None, "FAILED")])
    summary = reports.summarize(client, parent, OBJECTIVE)
    assert summary.swept == ["optimizer.learning_rate"]
    assert [row["rank"] for row in summary.rows] == ["2", "1", "-"]
    assert (summary.finished, summary.failed) == (2, 1)
    assert summary.best is not None and summary.best.data.params["optimizer.learning_rate"] == "0.003"
    table = reports.to_markdown(summary).splitlines()
    assert table[3].startswith("| 1 (best) | 1 | optimizer.learning_rate=0.003 | 0.9500")
    assert "| FAILED |" in table[4]


def test_a_sweep_stopped_in_its_first_job_labels_it_by_what_the_command_line_sweeps(store_uri) -> None:
    """One job recorded: no param differs between jobs, so the label comes from the sweep's command line."""
    client = MlflowClient(store_uri)
    parent = sweep(client, [("0.001", None, "KILLED")])
    client.set_tag(parent, names.SWEEP_OVERRIDES_TAG, "dataset.cache_dir=/data optimizer.learning_rate=1e-3,3e-3 "
                   "model=cnn,cnn_bn training.epochs=range(1,3) launcher=basic")  # fmt: skip
    (job,) = reports.children(client, parent)
    mine = "dataset.cache_dir=/data optimizer.learning_rate=0.001 model=cnn training.epochs=1 launcher=basic"
    client.set_tag(job.info.run_id, names.OVERRIDES_TAG, mine)
    (row,) = reports.summarize(client, parent, OBJECTIVE).rows
    assert row["overrides"] == "optimizer.learning_rate=0.001 model=cnn training.epochs=1"


def test_a_sweep_is_named_by_its_parent_or_its_folder(tmp_path) -> None:
    assert reports.sweep_parent("abc") == ("abc", None)
    with pytest.raises(UserError, match=f"has no {names.SWEEP_RECORD}: not a sweep folder"):
        reports.sweep_parent(str(tmp_path))
    (tmp_path / names.SWEEP_RECORD).write_text(json.dumps({"parent_run_id": "p", "tracking_uri": "sqlite:///x"}))
    assert reports.sweep_parent(str(tmp_path)) == ("p", "sqlite:///x")
