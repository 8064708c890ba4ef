"""Run names: the recipe, then what sets a run apart, composed by Hydra as a job would see them."""

from __future__ import annotations

import pytest
from helpers import as_hydra_job
from omegaconf import OmegaConf

from mnist_exp.display import RUN_NAME_LIMIT
from mnist_exp.tracking.names import SWEPT_ENV
from mnist_exp.tracking.sweep_callback import swept_keys


def name_in_job(overrides: list[str], multirun: bool = False) -> str:
    """``tracking.run_name`` as the Hydra job started with ``overrides`` resolves it."""
    with as_hydra_job(overrides, multirun) as cfg:
        return cfg.tracking.run_name


def test_a_run_is_named_by_its_recipe_and_the_overrides_that_change_it() -> None:
    assert name_in_job([]) == "cnn-mnist-adam"
    assert name_in_job(["training.seed=3", "training.precision=float32"]) == "cnn-mnist-adam seed=3,precision=float32"
    # Where and how a run is recorded or computed is not what it computes; a chosen optimizer is in the recipe.
    quiet = ["launcher=local_parallel", "tracking.log_model=false", "training.threads=1", "dataset.cache_dir=/x"]
    assert name_in_job([*quiet, "optimizer=sgd"]) == "cnn-mnist-sgd"
    assert name_in_job(["optimizer.learning_rate=0.0030000001", "training.batch_size=128", "lr_schedule=cosine"]) == (
        "cnn-mnist-adam lr=0.003,bs=128,schedule=cosine"
    )


def test_a_long_name_is_cut_and_a_set_name_is_kept() -> None:
    digest = "dataset.files.train_images.sha256=" + "a" * 64
    long = name_in_job(["dataset.cache_dir=/x", "dataset.train_size=640", digest, "training.epochs=12",
                        "training.seed=1234567", "training.batch_size=32"])  # fmt: skip
    assert len(long) == RUN_NAME_LIMIT and long.endswith("…"), long
    assert long.startswith("cnn-mnist-adam train_size=640,sha256=aaaaaaaa…,epochs=12")
    assert name_in_job(["tracking.run_name=baseline", "training.seed=3"]) == "baseline"


def test_a_sweep_job_is_named_by_its_swept_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SWEPT_ENV, "optimizer.learning_rate,training.batch_size")
    job = ["training.epochs=3", "optimizer.learning_rate=0.00312", "training.batch_size=128"]
    assert name_in_job(job, multirun=True) == "cnn-mnist-adam lr=0.00312,bs=128"
    assert name_in_job(job) == "cnn-mnist-adam epochs=3,lr=0.00312,bs=128"  # the variable means nothing outside a sweep


def test_the_swept_keys_are_the_sweep_overrides_and_the_sweepers_params() -> None:
    sweep = OmegaConf.create({"hydra": {
        "overrides": {"task": ["training.epochs=3", "optimizer.learning_rate=0.001,0.01", "training.seed=range(1,4)",
                               "+tracking.tags.note=x"]},
        "sweeper": {"params": {"training.batch_size": "choice(32, 64)"}},
    }})  # fmt: skip
    assert swept_keys(sweep) == ["optimizer.learning_rate", "training.seed", "training.batch_size"]
