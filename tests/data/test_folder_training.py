"""A user's own folder of pictures, by config alone: train, reuse the cache, rebuild it, predict."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers import SHAPES, draw_shape, run_module, write_pictures
from mlflow import MlflowClient

from mnist_exp.images import load_input

pytestmark = pytest.mark.slow  # trains in subprocesses


def test_fit_prepares_colour_pictures_at_the_models_size(tmp_path) -> None:
    draw_shape("disc", (50, 37), np.random.default_rng(0)).convert("RGBA").save(tmp_path / "p.png")
    array = load_input(tmp_path / "p.png", (32, 32, 3), "fit")
    assert array.shape == (32, 32, 3) and array.dtype == np.float32 and 0.0 <= array.min() < array.max() <= 1.0
    assert load_input(tmp_path / "p.png", (20, 24, 1), "fit").shape == (20, 24, 1)
    np.save(tmp_path / "a.npy", np.zeros((32, 32), np.float32))
    with pytest.raises(ValueError, match=r"expected \(32, 32, 3\)"):
        load_input(tmp_path / "a.npy", (32, 32, 3))


def output(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def test_mnist_exp_trains_on_a_folder_reuses_its_cache_and_predicts_with_it(tmp_path, store) -> None:
    pictures = write_pictures(tmp_path / "pics", per_class=60)
    cache = tmp_path / "cache"
    overrides = [
        "dataset=folder",
        f"dataset.path={tmp_path / 'pics'}",
        "dataset.image_shape=[32,32,3]",
        f"dataset.cache_dir={cache}",
        f"tracking.store_dir={store}",
        "training.epochs=6",
        "training.batch_size=16",
        "training.steps_per_execution=4",
    ]
    first = output(run_module(tmp_path, "mnist_exp.commands.train", *overrides, "tracking.log_model=true"))
    assert "decoding into the cache" in first and "no cache yet" in first
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("folder").experiment_id])
    assert run.data.metrics["test_accuracy"] > 0.8  # chance: 1/3
    assert json.loads(run.data.params["dataset.class_names"].replace("'", '"')) == sorted(SHAPES)

    second = output(run_module(tmp_path, "mnist_exp.commands.train", *overrides, "tracking.log_model=false"))
    assert "decoding" not in second and "test accuracy" in second
    os.utime(pictures[5])
    third = output(run_module(tmp_path, "mnist_exp.commands.train", *overrides, "tracking.log_model=false"))
    assert f"1 changed ({Path(pictures[5]).relative_to(tmp_path / 'pics').as_posix()})" in third

    new = tmp_path / "new_disc.jpg"
    draw_shape("disc", (45, 45), np.random.default_rng(99)).save(new)
    predicted = run_module(
        tmp_path, "mnist_exp.commands.predict", "--model", run.info.run_id, "--tracking-uri", client.tracking_uri,
        "--json", str(new),
    )  # fmt: skip
    (result,) = json.loads(predicted.stdout)
    assert result["name"] == "disc", result
