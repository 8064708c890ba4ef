"""Which model a run, a sweep or an epoch names, and the config a run logged."""

from __future__ import annotations

import mlflow
import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from mnist_exp.tracking import names, registry


@pytest.fixture
def client(store_uri: str) -> MlflowClient:
    mlflow.set_tracking_uri(store_uri)  # LoggedModel search is MLflow's fluent API
    return MlflowClient(store_uri)


def test_a_sweep_names_its_best_job_and_a_sweep_without_one_says_so(client) -> None:
    experiment = client.create_experiment("e")
    job = client.create_run(experiment).info.run_id
    parent = client.create_run(experiment, tags={names.SWEEP_ROLE_TAG: names.SWEEP_PARENT_ROLE}).info.run_id
    with pytest.raises(registry.ModelLookupError, match=f"sweep {parent} has no finished job"):
        registry.training_run(client, parent)
    client.set_tag(parent, names.BEST_RUN_ID_TAG, job)
    assert registry.training_run(client, parent).info.run_id == job
    with pytest.raises(registry.ModelLookupError, match="no run nope in sqlite"):
        registry.training_run(client, "nope")


def test_the_runs_model_an_epochs_model_or_what_is_missing(client) -> None:
    experiment = client.create_experiment("e")
    run = client.get_run(client.create_run(experiment).info.run_id)
    with pytest.raises(registry.ModelLookupError, match="logged no model"):
        registry.logged_model_uri(run)
    ids = {}
    for epoch in (1, 2, 3):
        tags = {names.MODEL_EPOCH_TAG: str(epoch)} | ({names.RUN_MODEL_TAG: "true"} if epoch == 2 else {})
        model = client.create_logged_model(experiment, source_run_id=run.info.run_id, tags=tags)
        client.finalize_logged_model(model.model_id, mlflow.entities.LoggedModelStatus.READY)
        ids[epoch] = model.model_id
    assert registry.logged_model_uri(run) == f"models:/{ids[2]}"  # the run's own, not the newest
    assert registry.logged_model_uri(run, epoch=3) == f"models:/{ids[3]}"
    with pytest.raises(registry.ModelLookupError, match=r"no model of epoch 9; it logged epochs \[1, 2, 3\]"):
        registry.logged_model_uri(run, epoch=9)


def test_a_runs_logged_config_keeps_its_values_and_gains_todays_recording_keys(client) -> None:
    experiment = client.create_experiment("e")
    run_id = client.create_run(experiment).info.run_id
    client.log_text(run_id, "training: {epochs: 3}\ntracking: {uri: old}\n", names.CONFIG_FILE)
    logged = registry.stored_config(client, client.get_run(run_id))
    current = OmegaConf.create({"training": {"epochs": 9}, "tracking": {"uri": "new", "retry_s": 5}, "sweep": {}})
    merged = registry.with_current_recording(logged, current)
    assert merged.training.epochs == 3 and merged.tracking.uri == "old" and merged.tracking.retry_s == 5
