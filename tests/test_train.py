"""End to end: real Keras training on synthetic data, tracked in a real MLflow store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from helpers import FAST, run_module
from mlflow import MlflowClient

from mnist_exp.display import RUN_NAME_LIMIT

pytestmark = pytest.mark.slow  # they train (the shared three-epoch run among them)

EPOCH_METRICS = (
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "epoch_time_s",
    "train_samples_per_s",
    "learning_rate",
)


def only_run(store: Path) -> mlflow.entities.Run:
    mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert len(runs) == 1
    return runs[0]


def artifact_paths(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for item in client.list_artifacts(run_id, path):
        found |= artifact_paths(client, run_id, item.path) if item.is_dir else {item.path}
    return found


@pytest.fixture(scope="module")
def finished(trained_run: tuple[dict, Path]) -> tuple[dict, mlflow.entities.Run]:
    """The shared three-epoch run and its MLflow record."""
    results, store = trained_run
    mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
    return results, mlflow.get_run(results["run_id"])


def test_run_returns_and_records_the_test_metrics(finished) -> None:
    results, run = finished
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "cnn-mnist-adam"  # composed outside a Hydra job: no command line to name it by
    for name in ("test_loss", "test_accuracy", "best_val_accuracy", "train_time_s", "train_samples_per_s_mean"):
        assert run.data.metrics[name] == pytest.approx(results[name])
    assert results["objective"] == results["best_val_accuracy"]
    assert 0.0 <= results["test_accuracy"] <= 1.0
    assert results["run_id"] == run.info.run_id


def test_every_epoch_metric_has_one_point_per_epoch(finished) -> None:
    _, run = finished
    client = MlflowClient()
    for name in EPOCH_METRICS:
        history = client.get_metric_history(run.info.run_id, name)
        assert sorted(m.step for m in history) == [1, 2, 3], name


def history(run_id: str, metric: str, client: MlflowClient | None = None) -> list[float]:
    points = (client or MlflowClient()).get_metric_history(run_id, metric)
    return [m.value for m in sorted(points, key=lambda m: m.step)]


def test_the_reference_learning_rate_stays_constant(finished) -> None:
    _, run = finished
    assert history(run.info.run_id, "learning_rate") == pytest.approx([0.003] * 3)


def test_a_cosine_schedule_decays_the_learning_rate_epoch_by_epoch(synthetic, store) -> None:
    """And a training start, new store and all, opens its store once."""
    from mnist_exp.config import compose
    from mnist_exp.tracking.store import OPENED
    from mnist_exp.train import train

    schedule = ["lr_schedule=cosine", "lr_schedule.warmup_epochs=0.5", "lr_schedule.final_fraction=0.1"]
    cfg = compose([*synthetic, *FAST, *schedule, f"tracking.store_dir={store}", "training.epochs=3"])
    shared_store, opened, uri = mlflow.get_tracking_uri(), len(OPENED), cfg.tracking.uri
    try:
        results = train(cfg)
    finally:
        mlflow.set_tracking_uri(shared_store)  # the other tests here read the shared run's store
    assert OPENED[opened:] == [uri]
    rates = history(results["run_id"], "learning_rate", MlflowClient(f"sqlite:///{store / 'mlflow.db'}"))
    assert rates[0] > rates[1] > rates[2] == pytest.approx(0.1 * cfg.optimizer.learning_rate)
    assert results["test_accuracy"] > 0.5  # ten classes: learning, not chance


def test_every_resolved_config_value_is_a_dotted_param(finished) -> None:
    _, run = finished
    params = run.data.params
    assert params["training.batch_size"] == "32"
    assert params["optimizer.learning_rate"] == "0.003"
    assert params["model.layers.conv1.filters"] == "32"
    assert params["model.output.units"] == "10"
    assert params["dataset.image_shape"] == "[28, 28, 1]"
    assert params["model.num_params"] == "93322"
    assert params["tracking.uri"].startswith("sqlite:///")


def test_tags_say_what_produced_the_run(finished) -> None:
    _, run = finished
    tags = run.data.tags
    assert len(tags["git.commit"]) == 40 or tags["git.commit"] == "unknown"
    assert tags["git.dirty"] in {"true", "false"}
    assert tags["dataset.name"] == "mnist"
    assert len(tags["dataset.digest"]) == 64
    assert tags["seed"] == "42"
    assert "mlflow.parentRunId" not in tags  # a single run has no sweep parent
    for library in ("python", "tensorflow", "keras", "hydra", "mlflow"):
        assert tags[f"version.{library}"][0].isdigit(), library


def test_artifacts_and_model_are_logged(finished) -> None:
    _, run = finished
    client = MlflowClient()
    paths = artifact_paths(client, run.info.run_id)
    assert {"plots/learning_curves.png", "plots/confusion_matrix.png", "config.yaml", "model_summary.txt"} <= paths
    png = Path(client.download_artifacts(run.info.run_id, "plots/learning_curves.png"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = Path(client.download_artifacts(run.info.run_id, "model_summary.txt")).read_text()
    assert "93,322" in summary
    models = mlflow.search_logged_models(experiment_ids=[run.info.experiment_id], output_format="list")
    assert [m.source_run_id for m in models] == [run.info.run_id]
    assert models[0].model_id  # a LoggedModel with a signature
    loaded = mlflow.pyfunc.load_model(f"models:/{models[0].model_id}")
    assert loaded.metadata.signature is not None


def test_each_epoch_trains_one_pass_over_the_training_images(finished) -> None:
    _, run = finished
    models = mlflow.search_logged_models(experiment_ids=[run.info.experiment_id], output_format="list")
    model = mlflow.keras.load_model(f"models:/{models[0].model_id}")
    steps_per_epoch = 16  # 512 training images in batches of 32, run in chunks of 5 steps
    epoch = int(models[0].tags["epoch"])  # the run's model is its best epoch's, optimizer state and all
    assert int(model.optimizer.iterations) == epoch * steps_per_epoch


def test_command_line_run_records_its_overrides(tmp_path, store, synthetic) -> None:
    overrides = [
        *synthetic,
        f"tracking.store_dir={store}",
        "training.epochs=1",
        "optimizer=sgd",
        "tracking.log_model=false",
    ]
    result = run_module(
        tmp_path, "mnist_exp.commands.train", *overrides, f"hydra.run.dir={tmp_path / 'out'}", timeout=300
    )
    assert "test accuracy" in result.stderr + result.stdout
    run = only_run(store)
    assert run.data.tags["hydra.overrides"] == " ".join(overrides)
    assert run.info.run_name.startswith("cnn-mnist-sgd train_size=")  # the recipe, then the command line's changes
    assert len(run.info.run_name) <= RUN_NAME_LIMIT


def test_the_first_import_of_the_fitting_steps_freezes_the_libraries_and_collection_goes_on() -> None:
    probe = (
        "import gc; from mnist_exp.train import fitting; fitting(); first = gc.get_freeze_count(); "
        "fitting(); print(first, gc.get_freeze_count(), gc.isenabled())"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    first, again, enabled = result.stdout.split()
    assert int(first) > 100_000  # TensorFlow's, Keras's and MLflow's objects
    assert again == first  # frozen once: what later jobs leave behind stays collectable
    assert enabled == "True"


def test_without_validation_data_no_val_metric_is_logged_and_the_objective_says_what_it_used(
    synthetic, store, caplog
) -> None:
    from mnist_exp.config import compose
    from mnist_exp.train import train

    cfg = compose(
        [*synthetic, *FAST, f"tracking.store_dir={store}", "training.epochs=2", "training.validation_split=0"]
    )
    shared_store = mlflow.get_tracking_uri()
    with caplog.at_level("INFO", logger="mnist_exp.train"):
        try:
            results = train(cfg)
        finally:
            mlflow.set_tracking_uri(shared_store)  # the other tests here read the shared run's store
    run = MlflowClient(f"sqlite:///{store / 'mlflow.db'}").get_run(results["run_id"])
    assert not [name for name in run.data.metrics if "val" in name]
    assert "train_accuracy" in run.data.metrics
    assert results["objective_metric"] == "test_accuracy"
    assert results["objective"] == results["test_accuracy"]
    assert "no validation data; objective test_accuracy (no validation data for best_val_accuracy)" in caplog.text


def test_the_runs_model_is_its_best_epochs_and_carries_the_metrics_it_scored(trained_run) -> None:
    """tracking.checkpoints=best (the default): one LoggedModel, the best epoch's, at its step, the run's metrics
    linked to it; the run's test metrics are that model's."""
    results, store = trained_run
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    run = client.get_run(results["run_id"])
    (model,) = client.search_logged_models([run.info.experiment_id])
    val = sorted(client.get_metric_history(run.info.run_id, "val_accuracy"), key=lambda m: m.step)
    best = max(val, key=lambda m: m.value).step  # the first epoch that reached the best
    assert model.tags == model.tags | {"epoch": str(best), "run_model": "true"}
    linked = {(m.key, m.step): m.value for m in model.metrics}
    assert linked[("val_accuracy", best)] == pytest.approx(val[best - 1].value)
    assert linked[("test_accuracy", 0)] == pytest.approx(results["test_accuracy"])


def test_every_epoch_can_be_a_model_and_register_and_predict_take_any(synthetic, store) -> None:
    from mnist_exp.config import compose
    from mnist_exp.tracking.registry import ModelLookupError, register, resolve
    from mnist_exp.train import train

    overrides = [*synthetic, *FAST, f"tracking.store_dir={store}", "training.epochs=3", "tracking.log_model=true"]
    overrides.append("tracking.checkpoints=every")
    results = train(compose(overrides))
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    run = client.get_run(results["run_id"])
    models = {m.tags["epoch"]: m for m in client.search_logged_models([run.info.experiment_id])}
    assert sorted(models) == ["1", "2", "3"]
    (own,) = [m for m in models.values() if m.tags.get("run_model") == "true"]
    assert resolve(client, run.info.run_id).uri == f"models:/{own.model_id}"
    assert resolve(client, run.info.run_id, epoch=1).uri == f"models:/{models['1'].model_id}"
    version = register(client, run.info.run_id, epoch=3)
    assert version.source == f"models:/{models['3'].model_id}"
    with pytest.raises(ModelLookupError, match=r"no model of epoch 9; it logged epochs \[1, 2, 3\]"):
        resolve(client, run.info.run_id, epoch=9)
