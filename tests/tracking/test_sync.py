"""mnist-exp-sync's part: a run folder's journal pushed into its store once the store is back."""

from __future__ import annotations

import json

import pytest
from helpers import free_port
from mlflow import MlflowClient

from mnist_exp.errors import UserError
from mnist_exp.tracking import names, sync
from mnist_exp.tracking.record import RunRecord


def test_a_journal_waits_while_its_store_is_away_and_is_pushed_once_it_is_back(
    tmp_path, store_uri, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    client = MlflowClient(store_uri)
    run_id = client.create_run(client.create_experiment("e")).info.run_id
    away = f"http://127.0.0.1:{free_port()}"
    record = RunRecord(MlflowClient(away), run_id, tmp_path / "runs" / run_id, retry_s=0.2)
    record.log_metrics({"val_accuracy": 0.5}, step=1)
    record.terminate("FINISHED")
    folders = sync.run_folders(tmp_path / "runs")
    assert folders == [tmp_path / "runs" / run_id] and sync.stores_of(folders) == [away]

    assert not sync.sync_folder(folders[0], dead_after_s=60)
    assert "cannot be reached" in capsys.readouterr().out

    info = folders[0] / names.RUN_INFO  # the store is back, where the run said it was
    info.write_text(json.dumps(json.loads(info.read_text()) | {"tracking_uri": store_uri}))
    assert sync.sync_folder(folders[0], dead_after_s=60)
    assert f"writes pushed to {store_uri}; the run is FINISHED" in capsys.readouterr().out
    assert client.get_run(run_id).data.metrics["val_accuracy"] == 0.5
    assert not folders[0].exists()  # a FINISHED run's folder is no longer needed


def test_a_folder_that_is_no_run_folder_is_named_with_the_fix(tmp_path) -> None:
    with pytest.raises(UserError, match=f"is not a run folder \\(no {names.RUN_INFO}\\). Fix"):
        sync.sync_folder(tmp_path, dead_after_s=60)
