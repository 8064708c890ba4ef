"""What a user reads when something is wrong: one line naming the field, file or store and the fix, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import FAST, free_port

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
def test_a_model_error_names_the_model_and_the_store(tmp_path, store_uri, reference) -> None:
    (tmp_path / "x.png").write_bytes(b"")
    uri = store_uri
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


def test_report_refuses_a_run_that_is_not_a_sweep_and_leaves_it_untouched(tmp_path, trained_run) -> None:
    results, store = trained_run
    uri = f"sqlite:///{store / 'mlflow.db'}"
    result = command(tmp_path, "mnist_exp.commands.report", results["run_id"], "--tracking-uri", uri)
    assert first_error_line(result).startswith(f"error: run {results['run_id']} (")
    assert "is not a sweep's parent run" in result.stderr and result.returncode == 1
    assert list(tmp_path.iterdir()) == []  # no summary written here
    from mlflow import MlflowClient

    run = MlflowClient(uri).get_run(results["run_id"])
    assert "jobs_finished" not in run.data.metrics and run.info.status == "FINISHED"


@pytest.mark.parametrize(
    "args",
    [
        ["report", "0123456789abcdef0123456789abcdef"],
        ["predict", "--model", "0123456789abcdef0123456789abcdef", "digit.png"],
        ["register", "0123456789abcdef0123456789abcdef"],
        ["reproduce", "0123456789abcdef0123456789abcdef"],
    ],
    ids=lambda args: args[0],
)
def test_a_command_that_reads_runs_never_creates_a_store(capsys, tmp_path, args) -> None:
    """In this process (the subprocess path of the same errors is tested above): each command's ``main``."""
    import importlib

    database = tmp_path / "elsewhere" / "mlflow.db"
    command_main = importlib.import_module(f"mnist_exp.commands.{args[0]}").main
    assert command_main([*args[1:], "--tracking-uri", f"sqlite:///{database}"]) == 1
    (error,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert "there is no store there" in error
    assert not database.parent.exists()


def test_the_pixel_limit_is_read_as_users_write_it() -> None:
    import argparse

    from mnist_exp.commands.predict import pixel_count

    assert [pixel_count(t) for t in ("40M", "40m", "40_000_000", "4e7", "2.5K")] == [40_000_000] * 4 + [2500]
    for bad in ("lots", "0", "-3M"):
        with pytest.raises(argparse.ArgumentTypeError, match="pixel"):
            pixel_count(bad)


def test_report_on_a_running_sweep_writes_a_partial_summary_and_leaves_the_parent_alone(tmp_path) -> None:
    from mnist_exp.tracking import liveness, names
    from mnist_exp.tracking.store import open_store

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = open_store(uri)
    experiment = client.create_experiment("sweeping")
    parent_tags = {names.SWEEP_ROLE_TAG: names.SWEEP_PARENT_ROLE} | liveness.owner_tags()  # this process: alive
    parent = client.create_run(experiment, tags=parent_tags).info.run_id
    client.create_run(experiment, tags={names.PARENT_RUN_TAG: parent, names.SWEEP_JOB_TAG: "0"})
    out = tmp_path / "partial"
    result = command(tmp_path, "mnist_exp.commands.report", parent, "--tracking-uri", uri, "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "0 finished, 0 failed" in result.stdout
    assert f"the sweep is still running: this summary is partial, and its parent run {parent} is left as it is" in (
        result.stdout
    )
    assert (out / "summary.md").is_file()
    run = client.get_run(parent)
    assert run.info.status == "RUNNING" and run.data.metrics == {}
    assert client.list_artifacts(parent) == []


def test_a_yaml_syntax_error_in_a_users_experiment_is_one_line_with_file_line_and_column(tmp_path) -> None:
    experiments = tmp_path / "my_conf" / "experiment"
    experiments.mkdir(parents=True)
    (experiments / "broken.yaml").write_text("# @package _global_\ntraining:\n  epochs: [3\n")
    result = command(
        tmp_path, "mnist_exp.commands.train", f"hydra.searchpath=[file://{tmp_path / 'my_conf'}]", "experiment=broken"
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"error: {experiments / 'broken.yaml'}, line 4, column 1: YAML syntax: while parsing a flow sequence "
        "(from line 3, column 11): expected ',' or ']', but got '<stream end>'. Fix: correct the file there"
    )
