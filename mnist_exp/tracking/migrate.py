"""Copy experiments and runs from one MLflow store into another.

For moving the local SQLite store onto a shared tracking server. Each run keeps its
name, status, times, params, tags, full metric histories and artifacts; sweep
children stay under their parent. Copies are tagged ``migrated_from`` with the
source run id, so running the command again copies only what is new. Logged model
entities (MLflow 3's LoggedModel) are not copied: register or log them again.
"""

from __future__ import annotations

import tempfile

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, Run

from mnist_exp.tracking.names import MIGRATED_FROM_TAG as MIGRATED_TAG
from mnist_exp.tracking.names import PARENT_RUN_TAG as PARENT_TAG


def all_metrics(client: MlflowClient, run: Run) -> list[Metric]:
    return [m for key in run.data.metrics for m in client.get_metric_history(run.info.run_id, key)]


def copy_run(source: MlflowClient, target: MlflowClient, run: Run, experiment_id: str, parent: str | None) -> str:
    """Copy one run; return its id in the target store."""
    tags = {k: v for k, v in run.data.tags.items() if k != PARENT_TAG} | {MIGRATED_TAG: run.info.run_id}
    if parent is not None:
        tags[PARENT_TAG] = parent
    copy = target.create_run(experiment_id, start_time=run.info.start_time, tags=tags, run_name=run.info.run_name)
    new_id = copy.info.run_id
    target.log_batch(new_id, metrics=all_metrics(source, run), params=[Param(k, v) for k, v in run.data.params.items()])
    with tempfile.TemporaryDirectory() as tmp:
        if source.list_artifacts(run.info.run_id):
            local = source.download_artifacts(run.info.run_id, "", tmp)
            target.log_artifacts(new_id, local)
    target.set_terminated(new_id, run.info.status, end_time=run.info.end_time)
    return new_id


def migrate(source: MlflowClient, target: MlflowClient, experiments: list[str] | None = None) -> int:
    """Copy the named experiments (default: all) with their runs; return how many runs were copied."""
    copied = 0
    for experiment in source.search_experiments():
        if experiments and experiment.name not in experiments:
            continue
        existing = target.get_experiment_by_name(experiment.name)
        experiment_id = (
            existing.experiment_id
            if existing
            else target.create_experiment(experiment.name, tags=dict(experiment.tags))
        )
        done = {
            r.data.tags[MIGRATED_TAG]: r.info.run_id
            for r in target.search_runs([experiment_id], f"tags.{MIGRATED_TAG} != ''", max_results=50_000)
        }
        runs = source.search_runs([experiment.experiment_id], max_results=50_000)
        for run in sorted(runs, key=lambda r: PARENT_TAG in r.data.tags):  # parents before their children
            if run.info.run_id in done:
                continue
            parent = run.data.tags.get(PARENT_TAG)
            done[run.info.run_id] = copy_run(source, target, run, experiment_id, done.get(parent, parent))
            copied += 1
            print(f"{experiment.name}: {run.info.run_name} {run.info.run_id} -> {done[run.info.run_id]}")
    return copied
