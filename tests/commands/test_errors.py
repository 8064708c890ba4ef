"""What a user reads when something is wrong: one line naming the field, file or store and the fix, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FAST, free_port

pytestmark = pytest.mark.slow


def command(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "HYDRA_FULL_ERROR")}
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=environment | (env or {}),
    )


def first_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    return next(line for line in result.stderr.splitlines() if line.startswith("error: "))


def test_a_config_error_is_one_line_with_the_field_and_the_fix(tmp_path) -> None:
    result = command(tmp_path, "mnist_exp.commands.train", "training.batch_size=-3", f"tracking.store_dir={tmp_path}")
    assert result.stderr.splitlines()[0] == (
        "error: invalid config: training.batch_size: Input should be greater than or equal to 1 (got -3). "
        "Fix: change the value on the command line or in its YAML file (mnist-exp --cfg job shows the composed config)"
    )
    assert "Traceback" not in result.stderr


def test_the_traceback_comes_when_asked_for(tmp_path) -> None:
    result = command(
        tmp_path,
        "mnist_exp.commands.train",
        "training.batch_size=-3",
        f"tracking.store_dir={tmp_path}",
        env={"HYDRA_FULL_ERROR": "1"},
    )
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "ConfigError" in result.stderr


def test_a_data_error_names_the_file_and_the_repair(tmp_path, synthetic) -> None:
    wrong = [o if not o.startswith("dataset.files.test_labels.sha256=") else f"{o[:-4]}beef" for o in synthetic]
    result = command(tmp_path, "mnist_exp.commands.train", *wrong, *FAST, f"tracking.store_dir={tmp_path}")
    line = first_error_line(result)
    assert "t10k-labels-idx1-ubyte" in line and "sha256" in line
    assert "Fix: mnist-exp-data pull mnist" in result.stderr


def test_a_store_error_names_the_store_and_the_fix(tmp_path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    line = first_error_line(command(tmp_path, "mnist_exp.commands.train", f"tracking.uri={uri}"))
    assert line.startswith(f"error: tracking store {uri} cannot be reached")
    assert "Fix: start the server" in line


@pytest.mark.parametrize("reference", ["models:/nope/1", "0123456789abcdef0123456789abcdef"])
def test_a_model_error_names_the_model_and_the_store(tmp_path, reference) -> None:
    (tmp_path / "x.png").write_bytes(b"")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = command(tmp_path, "mnist_exp.commands.predict", "--model", reference, "--tracking-uri", uri, "x.png")
    assert first_error_line(result) == (
        f"error: no model {reference} in {uri}"
        if reference.startswith("models:/")
        else f"error: no run {reference} in {uri}"
    )


def test_a_report_error_is_one_line(tmp_path) -> None:
    """mnist-exp-report's user errors get their line (importing the command once shadowed the error printer)."""
    not_a_sweep = tmp_path / "not_a_sweep"
    not_a_sweep.mkdir()
    result = command(tmp_path, "mnist_exp.commands.report", str(not_a_sweep))
    assert first_error_line(result).startswith(f"error: {not_a_sweep} has no mlflow_sweep.json: not a sweep folder")
    assert result.returncode == 1
