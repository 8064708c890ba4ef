"""Reliability: bad config refused at once, stores that fail fast, interrupt and resume, determinism."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from helpers import FAST, launch, runs_in
from mlflow import MlflowClient

from mnist_exp.config import compose
from mnist_exp.schema import ConfigError
from mnist_exp.tracking.store import TrackingError
from mnist_exp.train import train


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optimizer.learning_rate=-0.1", "optimizer.learning_rate: Input should be greater than 0 (got -0.1)"),
        ("optimizer.learning_rate=fast", "optimizer.learning_rate: Input should be a valid number"),
        ("training.validation_split=1.0", "training.validation_split: Input should be less than 1 (got 1.0)"),
        ("training.epochs=0", "training.epochs: Input should be greater than or equal to 1 (got 0)"),
        ("training.batch_size=0", "training.batch_size: Input should be greater than or equal to 1 (got 0)"),
        (
            "optimizer._target_=keras.optimizers.Adamm",
            "optimizer: _target_ 'keras.optimizers.Adamm' cannot be imported",
        ),
        (
            "lr_schedule._target_=mnist_exp.schedules.cosine",
            "lr_schedule: _target_ 'mnist_exp.schedules.cosine' cannot",
        ),
        ("optimizer._partial_=false", "optimizer._partial_: Input should be True"),
        ("model.layers.conv1.filters=-3", "model.layers.conv1: cannot build 'keras.layers.Conv2D'"),
        ("model.layers.conv1._target_=keras.layers.Conv9D", "model.layers.conv1: cannot build 'keras.layers.Conv9D'"),
        ("+model.layers.conv1.flavour=mint", "model.layers.conv1: cannot build 'keras.layers.Conv2D'"),
        (
            "+model.layers.big={_target_:keras.layers.Conv2D,filters:8,kernel_size:9}",
            "model.layers: the layers do not fit",
        ),
        ("model.loss=hinge_of_fate", "model.loss: unknown loss 'hinge_of_fate'"),
        (
            "model.loss={_target_:keras.losses.CategoricalCrossentropy,smoothing:0.1}",
            "invalid config: model.loss: keras.losses.CategoricalCrossentropy takes no argument smoothing; it takes",
        ),
        ("+optimizer.momentum_typo=0.9", "optimizer: keras.optimizers.Adam takes no argument momentum_typo; it takes"),
        ("+lr_schedule.warmup=1", "lr_schedule: mnist_exp.schedules.constant takes no argument warmup; it takes"),
        ("+training.epoch=3", "training.epoch: unknown key; remove it or fix its spelling"),
        ("lr_schedule=cosine lr_schedule.warmup_epochs=5", "warmup_epochs=5.0 must be less than training.epochs=5"),
        ("lr_schedule=cosine lr_schedule.final_fraction=2", "lr_schedule.final_fraction: Input should be less than"),
        ("training.batch_shards=33", "training.batch_shards=33 is more than training.batch_size=32; set it to at most"),
        (
            "+model.layers.norm={_target_:keras.layers.BatchNormalization} training.batch_shards=2",
            "training.batch_shards=2: model.layers.norm normalises with batch statistics",
        ),
    ],
)
def test_bad_values_are_refused_before_any_run(tmp_path, synthetic, override, message) -> None:
    cfg = compose([*synthetic, *FAST, f"tracking.store_dir={tmp_path}", *override.split()])
    start = time.perf_counter()
    with pytest.raises(ConfigError) as error:
        train(cfg)
    assert message in str(error.value)
    assert time.perf_counter() - start < 10
    assert runs_in(tmp_path) == []


def test_an_unreachable_server_fails_fast_with_its_uri(tmp_path, synthetic) -> None:
    uri = "http://127.0.0.1:9"
    cfg = compose([*synthetic, *FAST, f"tracking.uri={uri}"])
    start = time.perf_counter()
    with pytest.raises(TrackingError, match=f"tracking store {uri} cannot be reached"):
        train(cfg)
    assert time.perf_counter() - start < 10


def test_a_store_that_cannot_be_written_fails_fast_with_its_uri(tmp_path, synthetic) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    cfg = compose([*synthetic, *FAST, f"tracking.store_dir={blocker / 'mlruns'}"])
    with pytest.raises(TrackingError, match=f"tracking store sqlite:///{blocker}/mlruns/mlflow.db cannot be created"):
        train(cfg)


@pytest.mark.slow
def test_identical_config_is_skipped_and_reports_the_earlier_run(tmp_path, synthetic) -> None:
    overrides = [*synthetic, *FAST, f"tracking.store_dir={tmp_path}", "training.epochs=1", "training.skip_if_done=true"]
    first = train(compose(overrides))
    again = train(compose([*overrides, "training.verbose=0"]))  # verbosity does not change what is computed
    assert again["skipped"] is True
    assert again["run_id"] == first["run_id"]
    assert again["test_accuracy"] == first["test_accuracy"]
    assert len(runs_in(tmp_path)) == 1
    changed = train(compose([*overrides, "optimizer.learning_rate=0.002"]))
    assert "skipped" not in changed
    assert len(runs_in(tmp_path)) == 2


def test_a_signal_during_training_stops_it_at_the_next_boundary_and_a_second_at_once() -> None:
    from mnist_exp.callbacks import StopOnSignal

    # Python's own Ctrl-C handler, even where the suite runs with SIGINT ignored (a job started with `&`).
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with StopOnSignal() as stop:
            stop.on_train_batch_end(0)  # nothing received: training goes on
            signal.raise_signal(signal.SIGINT)  # noted, not raised inside whatever TensorFlow was doing
            assert stop.received == signal.SIGINT
            with pytest.raises(KeyboardInterrupt):
                stop.on_train_batch_end(1)
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGTERM)  # a second signal: at once
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, before)


def test_an_ignored_ctrl_c_stays_ignored_during_training() -> None:
    from mnist_exp.callbacks import StopOnSignal

    before = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as in a job started with `cmd &`
    try:
        with StopOnSignal() as stop:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            signal.raise_signal(signal.SIGINT)
            assert stop.received is None
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.slow
def test_deterministic_runs_reproduce_bit_for_bit(tmp_path, store, synthetic) -> None:
    first = launch(
        tmp_path,
        "mnist_exp.commands.train",
        *synthetic,
        *FAST,
        f"tracking.store_dir={store}",
        "training.epochs=2",
        "training.deterministic=true",
    )
    output = first.communicate(timeout=300)[0]
    assert first.returncode == 0, output[-3000:]
    (original,) = runs_in(store)

    again = launch(
        tmp_path,
        "mnist_exp.commands.reproduce",
        original.info.run_id,
        "--tracking-uri",
        f"sqlite:///{store / 'mlflow.db'}",
    )
    output = again.communicate(timeout=300)[0]
    assert again.returncode == 0, output[-3000:]
    assert "10 of 10 values identical" in output
    assert "val_accuracy[2]" in output
    reproduced = next(r for r in runs_in(store) if r.info.run_id != original.info.run_id)
    assert reproduced.data.tags["reproduced_from"] == original.info.run_id
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    for metric in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
        values = [
            [m.value for m in sorted(client.get_metric_history(r.info.run_id, metric), key=lambda m: m.step)]
            for r in (original, reproduced)
        ]
        assert values[0] == values[1], metric


@pytest.mark.slow
def test_command_line_config_errors_answer_before_tensorflow_loads(tmp_path) -> None:
    start = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mnist_exp.commands.train",
            "training.epochs=0",
            "optimizer.learning_rate=-1",
            f"tracking.store_dir={tmp_path}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    assert result.returncode == 1
    assert "training.epochs: Input should be greater than or equal to 1 (got 0)" in result.stderr
    assert "optimizer.learning_rate: Input should be greater than 0 (got -1)" in result.stderr
    assert elapsed < 4, f"{elapsed:.1f} s"  # TensorFlow alone takes over 4 s to import here
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.slow
@pytest.mark.parametrize("how", ["tracking.uri", "MLFLOW_TRACKING_URI"])
def test_a_sqlite_store_named_by_uri_keeps_its_artifacts_and_run_folders_beside_it(
    tmp_path, synthetic, monkeypatch, how
) -> None:
    database = tmp_path / "elsewhere" / "mlflow.db"
    if how == "MLFLOW_TRACKING_URI":
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{database}")
        overrides = []
    else:
        overrides = [f"tracking.uri=sqlite:///{database}"]
    cfg = compose([*synthetic, *FAST, "training.epochs=1", *overrides])
    assert cfg.tracking.runs_dir == str(database.parent / "runs")
    assert cfg.tracking.optuna_storage == f"sqlite:///{database.parent / 'optuna.db'}"
    results = train(cfg)
    run = MlflowClient(f"sqlite:///{database}").get_run(results["run_id"])
    assert run.info.artifact_uri.startswith((database.parent / "artifacts").as_uri())
    assert {a.path for a in MlflowClient(f"sqlite:///{database}").list_artifacts(run.info.run_id)} >= {"config.yaml"}

    with pytest.raises(ConfigError, match=r"tracking.store_dir=.*mine but the store sqlite:///.*elsewhere"):
        train(compose([*synthetic, *overrides, f"tracking.store_dir={tmp_path / 'mine'}"]))
