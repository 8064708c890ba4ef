"""The store: where it is, whether it can be used, and the experiment a run goes to."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from mnist_exp.tracking import store, views


def test_only_a_sqlite_uri_has_a_local_file() -> None:
    assert store.sqlite_path("sqlite:////data/mlflow.db") == Path("/data/mlflow.db")
    assert store.sqlite_path("http://127.0.0.1:5000") is None
    assert store.sqlite_path("postgresql://u@h/db") is None


def test_a_command_that_only_reads_never_creates_a_store(tmp_path) -> None:
    with pytest.raises(store.TrackingError, match=r"no store there .*Fix: pass --tracking-uri"):
        store.open_existing_store(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert not (tmp_path / "mlflow.db").exists()


def test_a_store_that_cannot_be_made_is_named_before_any_run(tmp_path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(store.TrackingError, match=r"tracking store sqlite:///.*/file/mlflow.db cannot be created"):
        store.check_store(f"sqlite:///{tmp_path / 'file' / 'mlflow.db'}")


def test_a_file_that_is_no_database_is_named_as_damaged(tmp_path) -> None:
    (tmp_path / "mlflow.db").write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(store.TrackingError, match=r"mlflow.db"):
        store.open_store(f"sqlite:///{tmp_path / 'mlflow.db'}", timeout=1)


def test_an_interrupted_upgrade_is_repaired_before_the_store_opens(store_uri) -> None:
    database = store.sqlite_path(store_uri)
    with contextlib.closing(sqlite3.connect(database)) as connection:
        connection.execute("CREATE TABLE _alembic_tmp_runs (x INTEGER)")
        connection.commit()
    assert store.leftover_migration_tables(database) == ["_alembic_tmp_runs"]
    store.open_store(store_uri)
    assert store.leftover_migration_tables(database) == []


def test_the_experiment_is_made_once_with_its_view(store_uri, tmp_path) -> None:
    tracking = OmegaConf.create(
        {"uri": store_uri, "experiment_name": "e", "artifact_location": str(tmp_path / "artifacts")}
    )
    objective = OmegaConf.create({"metric": "best_val_accuracy", "direction": "maximize"})
    client = store.open_store(store_uri)
    first = store.experiment_id(client, tracking, objective)
    assert store.experiment_id(client, tracking, objective) == first
    experiment = client.get_experiment(first)
    assert views.VIEW_TAG in experiment.tags
    assert experiment.artifact_location == (tmp_path / "artifacts").resolve().as_uri()
