"""mnist-exp-migrate's part: runs copied whole from one store to another, sweeps nested as before, once."""

from __future__ import annotations

import shutil

from mlflow import MlflowClient

from mnist_exp.tracking import names
from mnist_exp.tracking.migrate import migrate


def test_runs_are_copied_with_history_artifacts_and_parents_and_only_once(store_uri, tmp_path, blank_store) -> None:
    source = MlflowClient(store_uri)
    shutil.copyfile(blank_store, tmp_path / "target.db")
    target = MlflowClient(f"sqlite:///{tmp_path / 'target.db'}")
    experiment = source.create_experiment("e", tags={"kept": "yes"})
    parent = source.create_run(experiment, run_name="sweep").info.run_id
    child = source.create_run(experiment, run_name="job", tags={names.PARENT_RUN_TAG: parent}).info.run_id
    for step, value in enumerate([0.5, 0.7, 0.9], start=1):
        source.log_metric(child, "val_accuracy", value, step=step)
    source.log_param(child, "training.epochs", "3")
    source.log_text(child, "training: {}", names.CONFIG_FILE)
    source.set_terminated(child, "FINISHED")

    assert migrate(source, target) == 2
    copied = target.get_experiment_by_name("e")
    assert copied.tags["kept"] == "yes"
    runs = {r.info.run_name: r for r in target.search_runs([copied.experiment_id])}
    job, sweep = runs["job"], runs["sweep"]
    assert job.data.tags[names.PARENT_RUN_TAG] == sweep.info.run_id  # nested under the copy of its parent
    assert job.data.tags[names.MIGRATED_FROM_TAG] == child and job.info.status == "FINISHED"
    history = target.get_metric_history(job.info.run_id, "val_accuracy")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [(1, 0.5), (2, 0.7), (3, 0.9)]
    assert [a.path for a in target.list_artifacts(job.info.run_id)] == [names.CONFIG_FILE]
    assert migrate(source, target) == 0  # run again: nothing twice
