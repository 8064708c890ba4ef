"""Datasets by config: image folders, NumPy archives and CIFAR-10, their cache and their errors."""

from __future__ import annotations

import io
import json
import logging
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from helpers import FAST, SHAPES, write_pictures
from PIL import Image

from mnist_exp.config import compose
from mnist_exp.data import DataError, load
from mnist_exp.schema import ConfigError, validate

CLASSES = sorted(SHAPES)


def folder_cfg(root: Path, cache: Path, *overrides: str):
    return compose(["dataset=folder", f"dataset.path={root}", f"dataset.cache_dir={cache}", *overrides]).dataset


def test_a_folder_of_mixed_pictures_loads_sized_and_labelled_by_folder(tmp_path, caplog) -> None:
    write_pictures(tmp_path / "pics", per_class=10)
    cfg = folder_cfg(tmp_path / "pics", tmp_path / "cache", "dataset.image_shape=[24,24,3]")
    assert list(cfg.class_names) == CLASSES and cfg.num_classes == 3
    with caplog.at_level(logging.INFO):
        loaded = load(cfg)
    splits = loaded.splits
    assert splits.train_images.shape == (24, 24, 24, 3) and splits.test_images.shape == (6, 24, 24, 3)
    assert splits.train_images.dtype == np.uint8
    assert np.bincount(splits.test_labels).tolist() == [2, 2, 2]  # a seeded 20 % of each class
    assert "converted pictures to RGB" in caplog.text and "from L" in caplog.text and "from P" in caplog.text
    # the red disc is red: the labels follow the folders
    disc = splits.train_images[splits.train_labels == CLASSES.index("disc")]
    assert (disc[..., 0].astype(int) - disc[..., 2]).max() > 60


def test_grayscale_folders_load_with_one_channel(tmp_path) -> None:
    write_pictures(tmp_path / "pics", per_class=4)
    cfg = folder_cfg(tmp_path / "pics", tmp_path / "cache", "dataset.image_shape=[16,20,1]")
    assert load(cfg).splits.train_images.shape[1:] == (16, 20, 1)


def test_the_second_load_reads_the_cache_and_any_change_rebuilds_it(tmp_path, caplog) -> None:
    files = write_pictures(tmp_path / "pics", per_class=6)
    cfg = folder_cfg(tmp_path / "pics", tmp_path / "cache")
    with caplog.at_level(logging.INFO):
        first = load(cfg)
    assert "decoding into the cache" in caplog.text and "no cache yet" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO):
        again = load(cfg)
    assert "decoding" not in caplog.text
    np.testing.assert_array_equal(again.splits.train_images, first.splits.train_images)
    assert again.digest == first.digest

    os.utime(files[0])  # touched
    with caplog.at_level(logging.INFO):
        load(cfg)
    assert f"1 changed ({files[0].relative_to(tmp_path / 'pics').as_posix()})" in caplog.text
    caplog.clear()
    Image.new("RGB", (30, 30), (200, 30, 30)).save(tmp_path / "pics" / "disc" / "new.png")
    files[1].unlink()
    with caplog.at_level(logging.INFO):
        changed = load(cfg)
    assert "1 added (disc/new.png)" in caplog.text and "1 removed" in caplog.text
    assert changed.digest != first.digest
    caplog.clear()
    with caplog.at_level(logging.INFO):
        load(folder_cfg(tmp_path / "pics", tmp_path / "cache", "dataset.format.resize=nearest"))
    assert "the settings changed" in caplog.text


def test_files_that_are_not_pictures_are_refused_with_their_names_or_skipped(tmp_path, caplog) -> None:
    write_pictures(tmp_path / "pics", per_class=5)
    (tmp_path / "pics" / "disc" / "notes.txt").write_text("not a picture")
    (tmp_path / "pics" / "bar" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (tmp_path / "pics" / "bar" / ".DS_Store").write_bytes(b"hidden files are ignored")
    with pytest.raises(DataError) as error:
        load(folder_cfg(tmp_path / "pics", tmp_path / "cache"))
    message = str(error.value)
    assert "2 files are not readable pictures" in message
    assert "disc/notes.txt" in message and "bar/broken.png" in message and "DS_Store" not in message
    assert "dataset.format.bad_files=skip" in message
    with caplog.at_level(logging.WARNING):
        loaded = load(folder_cfg(tmp_path / "pics", tmp_path / "cache", "dataset.format.bad_files=skip"))
    assert "skipped 2 files" in caplog.text
    assert len(loaded.splits.train_labels) + len(loaded.splits.test_labels) == 15


@pytest.mark.parametrize(
    ("arrange", "message"),
    [
        (lambda root: (root / "empty").mkdir(), "class folder empty has no pictures"),
        (lambda root: [p.unlink() for c in ("bar", "square") for p in (root / c).iterdir()]
         and [(root / c).rmdir() for c in ("bar", "square")], "1 class folder (disc); a classifier needs at least 2"),
    ],
)  # fmt: skip
def test_a_folder_that_cannot_make_a_classifier_is_refused(tmp_path, arrange, message) -> None:
    write_pictures(tmp_path / "pics", per_class=3)
    arrange(tmp_path / "pics")
    with pytest.raises((DataError, ConfigError)) as error:
        cfg = compose(["dataset=folder", f"dataset.path={tmp_path / 'pics'}", f"dataset.cache_dir={tmp_path}/c"])
        validate(cfg)
        load(cfg.dataset)
    assert message in str(error.value)


def test_a_test_folder_missing_a_class_is_refused(tmp_path) -> None:
    write_pictures(tmp_path / "pics" / "train", per_class=4)
    write_pictures(tmp_path / "pics" / "test", per_class=2, seed=1)
    for path in (tmp_path / "pics" / "test" / "square").iterdir():
        path.unlink()
    cfg = folder_cfg(tmp_path / "pics", tmp_path / "cache")
    with pytest.raises(DataError, match="the test set has no image of class square"):
        load(cfg)


def test_a_missing_folder_names_the_field(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"dataset.path: .*nowhere is not a folder"):
        validate(compose(["dataset=folder", f"dataset.path={tmp_path / 'nowhere'}"]))
    with pytest.raises(ConfigError, match=r"Missing mandatory value: dataset\.path"):
        validate(compose(["dataset=folder"]))


def write_npz(path: Path, labels_train: np.ndarray, float_images: bool = False) -> None:
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (len(labels_train), 28, 28), dtype=np.uint8)
    x_test = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    if float_images:
        x_train, x_test = x_train / 255.0, x_test / 255.0
    np.savez(path, x_train=x_train, y_train=labels_train, x_test=x_test, y_test=np.arange(12) % 4)


def test_an_npz_archive_loads_with_its_classes_counted(tmp_path) -> None:
    write_npz(tmp_path / "d.npz", np.arange(40) % 4, float_images=True)
    cfg = compose(["dataset=npz", f"dataset.path={tmp_path / 'd.npz'}"]).dataset
    assert cfg.num_classes == 4 and list(cfg.class_names) == ["0", "1", "2", "3"]
    splits = load(cfg).splits
    assert splits.train_images.dtype == np.uint8 and splits.train_images.max() > 200


def test_npz_labels_outside_num_classes_and_wrong_shapes_are_refused(tmp_path) -> None:
    write_npz(tmp_path / "d.npz", np.arange(40) % 4)
    cfg = compose(["dataset=npz", f"dataset.path={tmp_path / 'd.npz'}", "dataset.num_classes=3",
                   "dataset.class_names=[a,b,c]"]).dataset  # fmt: skip
    with pytest.raises(DataError, match=r"labels run from 0 to 3, outside 0..2 .*Fix: set dataset.num_classes=4"):
        load(cfg)
    cfg = compose(["dataset=npz", f"dataset.path={tmp_path / 'd.npz'}", "dataset.image_shape=[32,32,3]"]).dataset
    with pytest.raises(DataError, match=r"are \(28, 28, 1\), not dataset.image_shape=\[32, 32, 3\]"):
        load(cfg)
    np.savez(tmp_path / "bad.npz", x_train=np.zeros((2, 28, 28)), y_train=np.zeros(2, int))
    with pytest.raises(DataError, match="no array x_test, y_test"):
        load(compose(["dataset=npz", f"dataset.path={tmp_path / 'bad.npz'}", "dataset.num_classes=2",
                      "dataset.class_names=[a,b]"]).dataset)  # fmt: skip


def write_cifar_archive(path: Path, per_batch: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    """A small archive in the official format: pickled dicts with bytes keys, N x 3072 planes."""
    rng = np.random.default_rng(seed)
    batches = {}
    with tarfile.open(path, "w:gz") as archive:
        for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
            labels = [int(v) for v in rng.permutation(np.arange(per_batch) % 10)]
            data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
            payload = pickle.dumps({b"batch_label": name.encode(), b"labels": labels, b"data": data}, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
            batches[name] = (data, labels)
    return batches


def test_a_cifar10_archive_loads_as_32_by_32_colour_pictures(tmp_path, caplog) -> None:
    batches = write_cifar_archive(tmp_path / "cifar-10-python.tar.gz")
    cfg = compose(["dataset=cifar10", f"dataset.archive={tmp_path / 'cifar-10-python.tar.gz'}",
                   f"dataset.cache_dir={tmp_path / 'cache'}"]).dataset  # fmt: skip
    with caplog.at_level(logging.WARNING):
        splits = load(cfg).splits
    assert "is not the official archive" in caplog.text
    assert splits.train_images.shape == (100, 32, 32, 3) and splits.test_images.shape == (20, 32, 32, 3)
    data, labels = batches["data_batch_1"]
    assert splits.train_labels[:20].tolist() == labels
    # the first 1024 values are the red plane, row by row
    np.testing.assert_array_equal(splits.train_images[0, 0, :, 0], data[0, :32])
    np.testing.assert_array_equal(splits.train_images[0, :, :, 2].reshape(-1), data[0, 2048:])
    (tmp_path / "broken.tar.gz").write_bytes(b"not a tar")
    broken = compose(["dataset=cifar10", f"dataset.archive={tmp_path / 'broken.tar.gz'}",
                      f"dataset.cache_dir={tmp_path / 'cache2'}"]).dataset  # fmt: skip
    with pytest.raises(DataError, match="not a CIFAR-10 python archive"):
        load(broken)


def test_the_reference_cnn_builds_for_cifar10_with_no_edit() -> None:
    from mnist_exp.network import build_model

    cfg = compose(["experiment=cifar10_reference"])
    model = build_model(cfg.model, cfg.dataset)
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 10)
    assert model.count_params() == 122_570


@pytest.mark.slow  # three trainings: the full suite's, not make test-fast's
def test_folder_cifar10_and_npz_runs_train_and_log_their_datasets(tmp_path, store) -> None:
    from mlflow import MlflowClient

    from mnist_exp.train import train

    write_pictures(tmp_path / "pics", per_class=8)
    write_cifar_archive(tmp_path / "c.tar.gz")
    write_npz(tmp_path / "d.npz", np.arange(40) % 4)
    runs = {
        "folder": ["dataset=folder", f"dataset.path={tmp_path / 'pics'}", "dataset.image_shape=[24,24,3]"],
        "cifar10": ["dataset=cifar10", f"dataset.archive={tmp_path / 'c.tar.gz'}"],
        "npz": ["dataset=npz", f"dataset.path={tmp_path / 'd.npz'}"],
    }
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    for name, overrides in runs.items():
        cfg = compose([*overrides, f"dataset.cache_dir={tmp_path / name}", f"tracking.store_dir={store}", *FAST,
                       "training.epochs=1"])  # fmt: skip
        results = train(cfg)
        run = client.get_run(results["run_id"])
        inputs = {i.tags[0].value: i.dataset for i in run.inputs.dataset_inputs}
        assert set(inputs) == {"training", "validation", "test"}
        assert {d.name for d in inputs.values()} == {name}
        assert len({d.digest for d in inputs.values()}) == 3
        assert json.loads(inputs["test"].profile)["features_shape"][0] == len(load(cfg.dataset).splits.test_labels)
    experiment = client.get_experiment_by_name("cifar10")
    found = client.search_runs([experiment.experiment_id], "datasets.name = 'cifar10' and datasets.context = 'test'")
    assert len(found) == 1
