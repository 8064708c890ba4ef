"""Shared fixtures: a tiny learnable dataset in the real IDX format, and a temporary MLflow store."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from helpers import (
    PG_BINS,
    dataset_overrides,
    free_port,
    server_command,
    serving,
    synthetic_arrays,
    write_dataset,
)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Overrides for a 640/160-image synthetic dataset, written once per session."""
    folder = tmp_path_factory.mktemp("synthetic")
    digests = write_dataset(folder, synthetic_arrays(640, 160))
    return dataset_overrides(folder, digests, 640, 160)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory, synthetic: list[str]) -> tuple[dict, Path]:
    """One fully tracked three-epoch run with its model, shared by the tests that read a finished run."""
    from mnist_exp.config import compose
    from mnist_exp.train import train

    store = tmp_path_factory.mktemp("trained") / "mlruns"
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    cfg = compose(
        [
            *synthetic,
            f"tracking.store_dir={store}",
            "training.epochs=3",
            "training.batch_size=32",
            "training.steps_per_execution=5",  # does not divide the 16 steps of an epoch
            "optimizer.learning_rate=0.003",
        ]
    )
    return train(cfg), store


@pytest.fixture(scope="session")
def blank_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow SQLite store, created (and migrated, seconds) once per session, to copy."""
    from mnist_exp.tracking.store import open_store

    database = tmp_path_factory.mktemp("blank-store") / "mlflow.db"
    open_store(f"sqlite:///{database}")
    return database


@pytest.fixture
def store(tmp_path: Path, blank_store: Path) -> Path:
    """This test's own store folder, holding a new, empty SQLite store (a copy of ``blank_store``): the
    processes the test starts find it migrated and do not run MLflow's migrations again."""
    folder = tmp_path / "mlruns"
    folder.mkdir()
    shutil.copyfile(blank_store, folder / "mlflow.db")
    return folder


@pytest.fixture
def store_uri(store: Path) -> str:
    """The URI of this test's own store (``store``)."""
    return f"sqlite:///{store / 'mlflow.db'}"


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL cluster on a free loopback port; its connection string (make test installs it)."""
    pg_bin = PG_BINS[-1]
    folder = Path(tempfile.mkdtemp(prefix="mnist-exp-pg-"))
    as_postgres = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(folder, "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    port = free_port()

    def pg(*args: str) -> None:
        subprocess.run([*as_postgres, *args], check=True, capture_output=True)

    pg(str(pg_bin / "initdb"), "-D", str(folder / "db"), "-U", "mlflow", "--auth=trust", "-E", "UTF8")
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
    pg(str(pg_bin / "pg_ctl"), "-D", str(folder / "db"), "-l", str(folder / "log"), "-w", "-o", options, "start")
    try:
        pg(str(pg_bin / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "mlflow", "mlflow")
        yield f"postgresql://mlflow@127.0.0.1:{port}/mlflow"
    finally:
        pg(str(pg_bin / "pg_ctl"), "-D", str(folder / "db"), "-m", "fast", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def server(postgres, tmp_path_factory):
    """mnist-exp-server on PostgreSQL with served artifacts; stopped with Ctrl-C at the end."""
    port = free_port()
    artifacts = tmp_path_factory.mktemp("served-artifacts")
    with serving(server_command(port, postgres, artifacts), port):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(autouse=True)
def no_ambient_tracking_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose their own store; a user's MLFLOW_TRACKING_URI must not leak in."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests held to one worker (a cluster, the wheel) first, so their long run overlaps the rest, not the end."""
    items.sort(key=lambda item: item.get_closest_marker("xdist_group") is None)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keep each phase's report on the test item, so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
