"""The MLflow UI's first screen of an experiment: a saved runs-table view that compares.

The UI keeps a saved view as an experiment tag ``mlflow.sharedViewState.<id>``: a JSON
envelope (``name``, ``createdAt``, ``updatedAt``) around the view's state (columns, their
order and widths, sort, filters), and opens it from ``?viewStateShareKey=<id>`` or its Views
menu. mnist-exp writes one, ``mnist-exp``, when an experiment is created: run name and
status, ``test_accuracy``, the objective, ``train_time_s``, the dataset, sorted by the objective.
``mnist-exp-ui`` adds the params that differ between the experiment's runs and opens on it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from mlflow import MlflowClient

from mnist_exp.tracking import names

VIEW_TAG = f"{names.SAVED_VIEW_TAG_PREFIX}{names.RUNS_VIEW}"
DATASET_COLUMN = "attributes.`Dataset`"
MAX_PARAM_COLUMNS = 6  # what fits beside the metrics at 1280 pixels
SCANNED_RUNS = 500  # the newest runs whose params are compared
WIDTHS = {"metrics": 120, "params": 110}
# The UI's model-training view (runs, metrics, models) rather than its GenAI view (traces, sessions),
# the runs sorted by test accuracy, best first.
MODEL_TRAINING_VIEW = "workflowType=machine_learning"
VIEW_KEY_PARAM = "viewStateShareKey"  # the UI's URL parameter that opens a saved view


def metric_column(key: str) -> str:
    return f"metrics.`{key}`"


def param_column(key: str) -> str:
    return f"params.`{key}`"


def view_state(objective_metric: str, maximize: bool, params: list[str]) -> dict[str, Any]:
    """The state of the view: the metrics first, then the differing params, sorted by the objective."""
    metrics = list(dict.fromkeys([names.TEST_ACCURACY, objective_metric, names.RUN_TRAIN_TIME]))
    columns = [*map(metric_column, metrics), *map(param_column, params[:MAX_PARAM_COLUMNS]), DATASET_COLUMN]
    return {
        "orderByKey": metric_column(objective_metric),
        "orderByAsc": not maximize,
        "selectedColumns": columns,
        "columnOrder": columns,
        "columnWidths": {c: WIDTHS[c.split(".")[0]] for c in columns if c.split(".")[0] in WIDTHS},
    }


def envelope(state: dict[str, Any], created_ms: int | None = None) -> str:
    """The tag's value: the UI's saved-view envelope around ``state``."""
    now = int(time.time() * 1000)
    record = {"name": names.RUNS_VIEW, "createdAt": created_ms or now, "updatedAt": now, "state": json.dumps(state)}
    return json.dumps(record, separators=(",", ":"))


def experiment_tags(objective: Any) -> dict[str, str]:
    """The view's tag for a new experiment, sorted by ``objective`` (``metric``, ``direction``)."""
    return {VIEW_TAG: envelope(view_state(objective.metric, objective.direction == "maximize", []))}


def differing_params(client: MlflowClient, experiment_id: str, quiet: Sequence[str] = ()) -> list[str]:
    """The params that differ between the experiment's newest runs, leaving out the ``quiet`` keys and those under them
    (the caller's: where and how runs were recorded, ``schema.NOT_IN_CONFIG_HASH``)."""
    runs = client.search_runs([experiment_id], max_results=SCANNED_RUNS, order_by=["attributes.start_time DESC"])
    values: dict[str, set[str]] = {}
    for run in runs:
        for key, value in run.data.params.items():
            values.setdefault(key, set()).add(value)
    return sorted(
        key
        for key, seen in values.items()
        if len(seen) > 1 and not any(key == q or key.startswith(f"{q}.") for q in quiet) and "sha256" not in key
    )


def insert_before(listed: list[str], column: str, anchor: str) -> None:
    """Put ``column`` before ``anchor`` in ``listed`` (at the end without it)."""
    listed.insert(listed.index(anchor) if anchor in listed else len(listed), column)


def objective_of(client: MlflowClient, experiment_id: str) -> tuple[str, bool]:
    """The objective the experiment's newest run was trained for (its params), and whether it is maximised."""
    run = next(iter(client.search_runs([experiment_id], max_results=1)), None)
    params = run.data.params if run else {}
    return params.get("objective.metric", names.BEST_VAL_ACCURACY), params.get("objective.direction") != "minimize"


def refresh(client: MlflowClient, experiment_id: str, quiet: Sequence[str] = ()) -> None:
    """Write the view with the params that differ now (an experiment made before views were written gets one).

    What a user saved into the view (sort, widths, columns) is kept; params are added, none removed.
    """
    params = differing_params(client, experiment_id, quiet)
    try:
        record = json.loads(client.get_experiment(experiment_id).tags[VIEW_TAG])
        state = json.loads(record["state"])
        columns = state["selectedColumns"]
    except (KeyError, TypeError, ValueError):  # no view yet, or one that cannot be read: write it afresh
        state = view_state(*objective_of(client, experiment_id), params)
        client.set_experiment_tag(experiment_id, VIEW_TAG, envelope(state))
        return
    room = MAX_PARAM_COLUMNS - sum(c.startswith("params.") for c in columns)
    new = [c for c in map(param_column, params) if c not in columns][: max(room, 0)]
    if not new:
        return
    for column in new:
        insert_before(columns, column, DATASET_COLUMN)
        insert_before(state.setdefault("columnOrder", []), column, DATASET_COLUMN)
        state.setdefault("columnWidths", {})[column] = WIDTHS["params"]
    client.set_experiment_tag(experiment_id, VIEW_TAG, envelope(state, record.get("createdAt")))


def landing_page(client: MlflowClient, quiet: Sequence[str] = ()) -> str:
    """The page to open first: the newest run's experiment in the model-training view, on mnist-exp's saved view.

    The view is brought up to date first: the params that differ between the runs become columns,
    except the ``quiet`` ones (``refresh``).
    """
    experiments = [e.experiment_id for e in client.search_experiments()]
    newest = client.search_runs(experiments, order_by=["attributes.start_time DESC"], max_results=1)
    if not newest:
        return f"#/experiments?{MODEL_TRAINING_VIEW}"
    experiment_id = newest[0].info.experiment_id
    refresh(client, experiment_id, quiet)
    return f"#/experiments/{experiment_id}/runs?{MODEL_TRAINING_VIEW}&{VIEW_KEY_PARAM}={names.RUNS_VIEW}"
