"""mnist-exp's saved view of an experiment's runs, as the MLflow UI reads it from the experiment's tags."""

from __future__ import annotations

import json

from mlflow import MlflowClient
from omegaconf import OmegaConf

from mnist_exp.schema import NOT_IN_CONFIG_HASH
from mnist_exp.tracking import views
from mnist_exp.tracking.names import RUNS_VIEW
from mnist_exp.tracking.store import open_store


def view_of(client, experiment_id: str) -> dict:
    record = json.loads(client.get_experiment(experiment_id).tags[views.VIEW_TAG])
    assert record["name"] == "mnist-exp" and isinstance(record["createdAt"], int)
    return json.loads(record["state"])


def test_a_new_experiments_view_sorts_by_the_objective_and_gains_the_params_that_differ(tmp_path) -> None:
    client = open_store(f"sqlite:///{tmp_path / 'mlflow.db'}")
    objective = OmegaConf.create({"metric": "val_loss", "direction": "minimize"})
    experiment = client.create_experiment("e", tags=views.experiment_tags(objective))
    state = view_of(client, experiment)
    assert state["orderByKey"] == "metrics.`val_loss`" and state["orderByAsc"] is True
    assert state["selectedColumns"][:3] == ["metrics.`test_accuracy`", "metrics.`val_loss`", "metrics.`train_time_s`"]

    for seed in (1, 2):
        run = client.create_run(experiment).info.run_id
        params = {
            "training.seed": seed,
            "training.epochs": 5,
            "tracking.uri": f"sqlite:///{seed}",
            "training.threads": seed,
        }
        for key, value in params.items():
            client.log_param(run, key, value)
    state["columnWidths"]["metrics.`val_loss`"] = 300  # a user's change, saved into the view
    record = json.loads(client.get_experiment(experiment).tags[views.VIEW_TAG])
    client.set_experiment_tag(experiment, views.VIEW_TAG, views.envelope(state, record["createdAt"]))

    views.refresh(client, experiment, NOT_IN_CONFIG_HASH)
    state = view_of(client, experiment)
    params = [c for c in state["selectedColumns"] if c.startswith("params.")]
    assert params == ["params.`training.seed`"]  # not the same epochs, nor where and how the runs were recorded
    assert state["selectedColumns"][-1] == views.DATASET_COLUMN
    assert state["columnWidths"]["metrics.`val_loss`"] == 300 and state["orderByAsc"] is True


def test_an_experiment_without_a_view_gets_one_sorted_by_its_runs_objective(tmp_path) -> None:
    client = open_store(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("old")
    run = client.create_run(experiment).info.run_id
    client.log_param(run, "objective.metric", "test_accuracy")
    views.refresh(client, experiment, NOT_IN_CONFIG_HASH)
    state = view_of(client, experiment)
    assert state["orderByKey"] == "metrics.`test_accuracy`" and state["orderByAsc"] is False


def test_the_ui_opens_on_the_newest_runs_experiment_in_its_saved_view(store_uri) -> None:
    client = MlflowClient(store_uri)
    assert views.landing_page(client).startswith("#/experiments?")  # no run yet: the experiments list
    client.create_run(client.create_experiment("old"))
    newest = client.create_experiment("newest")
    client.create_run(newest)
    page = views.landing_page(client)
    assert page.startswith(f"#/experiments/{newest}/runs?") and page.endswith(f"viewStateShareKey={RUNS_VIEW}")
