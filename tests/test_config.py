"""Config composition: every option composes and builds, overrides reach the model, typos fail."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from hydra.errors import ConfigCompositionException

from mnist_exp import schema
from mnist_exp.config import compose, group_options
from mnist_exp.layout import checkout_root
from mnist_exp.network import build_loss, build_model, build_optimizer, build_partial

RECIPE = [
    ("Conv2D", 32, (3, 3), "relu"),
    ("MaxPooling2D", None, (2, 2), None),
    ("Conv2D", 64, (3, 3), "relu"),
    ("MaxPooling2D", None, (2, 2), None),
    ("Conv2D", 64, (3, 3), "relu"),
    ("Flatten", None, None, None),
    ("Dense", 64, None, "relu"),
    ("Dense", 10, None, "softmax"),
]


def describe(layer: keras.layers.Layer) -> tuple:
    config = layer.get_config()
    width = config.get("filters", config.get("units"))
    window = config.get("kernel_size", config.get("pool_size"))
    return type(layer).__name__, width, window and tuple(window), config.get("activation")


# The datasets that need no path of the user's (folder and npz are tested with data in tests/data/).
BUILT_IN = [name for name in group_options("dataset") if name not in ("folder", "npz")]


@pytest.mark.parametrize(
    ("dataset", "model", "optimizer"),
    list(itertools.product(BUILT_IN, group_options("model"), group_options("optimizer"))),
)
def test_every_option_composes_and_builds(dataset: str, model: str, optimizer: str) -> None:
    cfg = compose([f"dataset={dataset}", f"model={model}", f"optimizer={optimizer}"])
    built = build_model(cfg.model, cfg.dataset)
    assert built.output_shape == (None, cfg.dataset.num_classes)
    built_optimizer = build_optimizer(cfg, steps_per_epoch=750)
    assert type(built_optimizer).__name__.lower() == optimizer
    assert float(built_optimizer.learning_rate) == pytest.approx(cfg.optimizer.learning_rate)
    assert cfg.tracking.run_name == f"{model}-{dataset}-{optimizer}"


@pytest.mark.parametrize("experiment", group_options("experiment"))
def test_every_experiment_composes(experiment: str) -> None:
    cfg = compose([f"experiment={experiment}"])
    assert cfg.tracking.experiment_name == experiment
    assert cfg.training.epochs >= 1


def test_reference_model_is_the_recipe() -> None:
    cfg = compose(["experiment=reference"])
    model = build_model(cfg.model, cfg.dataset)
    assert model.count_params() == 93_322
    assert model.input_shape == (None, 28, 28, 1)
    assert [describe(layer) for layer in model.layers] == RECIPE


def test_reference_training_settings() -> None:
    cfg = compose(["experiment=reference"])
    assert (cfg.training.epochs, cfg.training.batch_size, cfg.training.validation_split) == (5, 64, 0.2)
    assert (cfg.optimizer.name, cfg.model.loss) == ("adam", "categorical_crossentropy")
    assert cfg.dataset.name == "mnist"


def learning_rate(cfg):
    """The learning rate or schedule the run's optimizer gets, for the reference run's 750 steps per epoch."""
    lr_cfg = cfg.lr_schedule
    return build_partial(
        lr_cfg,
        "lr_schedule",
        learning_rate=cfg.optimizer.learning_rate,
        steps_per_epoch=750,
        epochs=cfg.training.epochs,
    )


def test_reference_learning_rate_is_constant() -> None:
    assert learning_rate(compose(["experiment=reference"])) == 1e-3


def test_cosine_schedule_warms_up_then_decays_to_the_final_fraction() -> None:
    cfg = compose(
        ["lr_schedule=cosine", "training.epochs=2", "optimizer.learning_rate=0.01", "lr_schedule.final_fraction=0.1"]
    )
    schedule = learning_rate(cfg)
    steps_per_epoch = 48_000 // 64  # 80 % of 60,000 images in batches of 64
    warmup = round(0.2 * steps_per_epoch)
    rates = [float(schedule(step)) for step in range(0, 2 * steps_per_epoch + 1, 25)]
    assert float(schedule(0)) == 0.0
    assert float(schedule(warmup)) == pytest.approx(0.01)
    assert float(schedule(2 * steps_per_epoch)) == pytest.approx(0.001)
    peak = rates.index(max(rates))
    assert rates[: peak + 1] == sorted(rates[: peak + 1])
    assert rates[peak:] == sorted(rates[peak:], reverse=True)


def test_fashion_reference_only_swaps_the_dataset() -> None:
    reference, fashion = compose(["experiment=reference"]), compose(["experiment=fashion_reference"])
    assert fashion.dataset.name == "fashion_mnist"
    assert fashion.dataset.class_names[9] == "Ankle boot"
    assert fashion.model == reference.model
    assert fashion.training == reference.training


def test_layer_overrides_change_the_built_model() -> None:
    cfg = compose(
        [
            "model.layers.conv1.filters=16",
            "~model.layers.pool2",
            "+model.layers.dropout={_target_: keras.layers.Dropout, rate: 0.5}",
        ]
    )
    model = build_model(cfg.model, cfg.dataset)
    names = [layer.name for layer in model.layers]
    assert names == ["conv1", "pool1", "conv2", "conv3", "flatten", "dense1", "dropout", "output"]
    assert model.get_layer("conv1").filters == 16
    assert model.count_params() != 93_322


def test_the_loss_is_named_or_built_from_a_node_with_its_arguments() -> None:
    """``model.loss`` by name is the recipe's loss; a node builds one with arguments, here label smoothing."""
    labels, predicted = keras.ops.one_hot([0, 1], 10), keras.ops.one_hot([0, 1], 10) * 0.9 + 0.01
    named = build_loss(compose().model.loss)
    cfg = compose(["model.loss={_target_:keras.losses.CategoricalCrossentropy,label_smoothing:0.1}"])
    schema.validate(cfg)
    smoothed = build_loss(cfg.model.loss)
    assert float(keras.ops.mean(named(labels, predicted))) == pytest.approx(-np.log(0.91), rel=1e-4)
    assert float(smoothed(labels, predicted)) > float(keras.ops.mean(named(labels, predicted)))  # targets 0.91/0.01
    assert schema.config_hash(compose()) != schema.config_hash(cfg)


def test_a_null_layer_is_left_out_as_an_overlay_says() -> None:
    cfg = compose(["experiment=speedrun"])
    schema.validate(cfg)
    names = [layer.name for layer in build_model(cfg.model, cfg.dataset).layers]
    assert names == ["conv1", "pool1", "conv2", "pool2", "conv3", "norm3", "flatten", "dense1", "output"]


def test_unknown_override_key_fails_with_hydras_error() -> None:
    with pytest.raises(ConfigCompositionException, match=r"Could not override 'training\.epoch'"):
        compose(["training.epoch=3"])


def test_default_store_is_under_the_project_root_whatever_the_working_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = compose()
    root = checkout_root()
    assert root is not None and (root / "pyproject.toml").is_file()
    assert cfg.tracking.uri == f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    assert Path(cfg.tracking.artifact_location) == root / "mlruns" / "artifacts"


def test_environment_points_tracking_at_a_server(monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert compose().tracking.uri == "http://127.0.0.1:5000"
    assert compose(["tracking.uri=http://tracking.example:5000"]).tracking.uri == "http://tracking.example:5000"


def test_help_lists_a_users_own_experiments_from_the_searchpath(tmp_path) -> None:
    """``--help`` with ``hydra.searchpath=[file://DIR]`` lists DIR's experiments beside the packaged ones."""
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "mine.yaml").write_text("# @package _global_\n# My own experiment.\n")
    command = [sys.executable, "-m", "mnist_exp.commands.train", f"hydra.searchpath=[file://{tmp_path}]", "--help"]
    shown = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr[-2000:]
    experiments = shown.stdout.split("== Experiments")[1].split("==")[1]
    listed = {line.split()[0]: " ".join(line.split()[1:]) for line in experiments.strip().splitlines()}
    assert listed["mine"] == "My own experiment." and "reference" in listed


@pytest.mark.parametrize(
    ("pruner", "kind"),
    [("median", "MedianPruner"), ("successive_halving", "SuccessiveHalvingPruner"), ("hyperband", "HyperbandPruner")],
)
def test_each_pruner_option_builds_optunas_pruner(pruner: str, kind: str) -> None:
    """``hydra/sweeper/pruner=NAME`` over the Optuna experiment gives Optuna's own pruner; null turns it off."""
    from hydra.utils import instantiate

    overrides = ["experiment=optuna_search", f"hydra/sweeper/pruner={pruner}"]
    sweeper = compose(overrides, return_hydra_config=True).hydra.sweeper
    off = compose([*overrides, "hydra.sweeper.pruner=null"], return_hydra_config=True)
    assert type(instantiate(sweeper.pruner)).__name__ == kind
    assert off.hydra.sweeper.pruner is None


def test_the_config_hash_leaves_out_exactly_the_keys_the_schema_marks() -> None:
    from mnist_exp.schema import NOT_IN_CONFIG_HASH, config_hash, not_hashed_keys

    assert set(NOT_IN_CONFIG_HASH) == set(not_hashed_keys()) == {
        "tracking", "resume", "sweep", "training.skip_if_done", "training.verbose", "training.threads",
        "training.batch_shards", "dataset.cache_dir", "dataset.sources",
    }  # fmt: skip
    base = config_hash(compose())
    assert config_hash(compose(["training.verbose=0", "training.threads=1", "tracking.retry_s=5"])) == base
    assert config_hash(compose(["training.seed=1"])) != base


@pytest.mark.parametrize("key", ["training.momentum", "tracking.heartbeat", "sweep.grace", "objective.goal"])
def test_a_key_without_a_schema_field_is_refused(key: str) -> None:
    from mnist_exp.schema import ConfigError, validate

    with pytest.raises(ConfigError, match=f"{key}: unknown key"):
        validate(compose([f"+{key}=1"]))


def test_a_config_logged_before_new_recording_keys_gets_them_and_keeps_its_values() -> None:
    from omegaconf import OmegaConf

    from mnist_exp.tracking.registry import with_current_recording

    current = compose()
    logged = OmegaConf.create(OmegaConf.to_container(current, resolve=True))
    del logged.tracking["heartbeat_s"], logged.sweep["stop_grace_s"]
    logged.tracking.retry_s = 7
    merged = with_current_recording(logged, current)
    assert merged.tracking.heartbeat_s == current.tracking.heartbeat_s
    assert merged.sweep.stop_grace_s == current.sweep.stop_grace_s
    assert merged.tracking.retry_s == 7 and merged.training == logged.training
