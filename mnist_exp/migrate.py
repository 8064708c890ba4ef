"""``mnist-exp-migrate``: copy experiments and runs from one MLflow store into another.

For moving the local SQLite store onto a shared tracking server. Each run keeps its
name, status, times, params, tags, full metric histories and artifacts; sweep
children stay under their parent. Copies are tagged ``migrated_from`` with the
source run id, so running the command again copies only what is new. Logged model
entities (MLflow 3's LoggedModel) are not copied: register or log them again.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, Run

MIGRATED_TAG = "migrated_from"
PARENT_TAG = "mlflow.parentRunId"


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mnist-exp-migrate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--to", required=True, help="the target tracking URI, e.g. http://127.0.0.1:5000")
    parser.add_argument("--from", dest="source", help="the source store (default: the project's SQLite store)")
    parser.add_argument("--experiment", action="append", help="copy only this experiment (repeatable)")
    args = parser.parse_args(argv)
    from mnist_exp.cli import tracking_uri

    source_uri = args.source or tracking_uri(None)
    if source_uri.startswith("sqlite:///") and not Path(source_uri.removeprefix("sqlite:///")).exists():
        parser.error(f"no store at {source_uri}")
    copied = migrate(MlflowClient(source_uri), MlflowClient(args.to), args.experiment)
    print(f"{copied} runs copied from {source_uri} to {args.to}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
