"""The data layer: IDX checks, the verified cache, and source fail-over. No network is used."""

from __future__ import annotations

import gzip
import io
import pickle
from pathlib import Path

import numpy as np
import pytest
from helpers import FILENAMES, dataset_overrides, synthetic_arrays, write_dataset

from mnist_exp.commands import data as cli
from mnist_exp.config import compose
from mnist_exp.data import DataError, DatasetFiles, pull
from mnist_exp.data.sources import _NumpyOnlyUnpickler
from mnist_exp.data.store import load

N_TRAIN, N_TEST = 50, 20
REFUSED = "http://127.0.0.1:9"  # the discard port: nothing listens, the connection is refused at once


@pytest.fixture
def arrays() -> dict[str, np.ndarray]:
    return synthetic_arrays(N_TRAIN, N_TEST)


@pytest.fixture
def cached(tmp_path: Path, arrays: dict[str, np.ndarray]):
    """A valid cache folder and the composed dataset config that describes it."""
    folder = tmp_path / "cache"
    digests = write_dataset(folder, arrays)
    return folder, compose(dataset_overrides(folder, digests, N_TRAIN, N_TEST)).dataset


def test_verified_cache_loads_exact_arrays(cached, arrays) -> None:
    _, cfg = cached
    splits = load(cfg)
    for role, array in arrays.items():
        np.testing.assert_array_equal(getattr(splits, role), array)


def test_gzipped_files_are_accepted(cached, arrays) -> None:
    folder, cfg = cached
    path = folder / FILENAMES["train_images"]
    path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
    path.unlink()
    np.testing.assert_array_equal(load(cfg).train_images, arrays["train_images"])


def damage_flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def damage_truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


def damage_magic(path: Path) -> None:
    path.write_bytes(b"\x00\x00\x09\x03" + path.read_bytes()[4:])


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (damage_flip, "sha256 mismatch: expected"),
        (damage_truncate, "wrong size (truncated or padded): expected"),
        (damage_magic, "wrong magic number: expected 00000803, found 00000903"),
        (Path.unlink, "file is missing"),
    ],
)
def test_damaged_cache_gives_clear_error_and_verify_fails(cached, damage, expected, capsys) -> None:
    folder, cfg = cached
    path = folder / FILENAMES["train_images"]
    damage(path)
    with pytest.raises(DataError) as error:
        load(cfg)
    message = str(error.value)
    assert str(path) in message
    assert expected in message
    assert f"Fix: mnist-exp-data pull {cfg.name} --cache-dir {folder}" in message
    assert cli.cmd_verify([cfg]) == 1
    out = capsys.readouterr().out
    assert "0 of 1 datasets OK" in out
    assert f"FAIL {cfg.name}: " in out and str(path) in out


def test_sha256_error_names_both_digests(cached) -> None:
    folder, cfg = cached
    damage_flip(folder / FILENAMES["test_labels"])
    with pytest.raises(DataError, match=f"expected {cfg.files.test_labels.sha256}, found [0-9a-f]{{64}}"):
        load(cfg)


def test_verify_passes_on_a_good_cache(cached, capsys) -> None:
    _, cfg = cached
    assert cli.cmd_verify([cfg]) == 0
    assert "1 of 1 datasets OK" in capsys.readouterr().out


def served_dataset(tmp_path: Path, arrays: dict[str, np.ndarray]) -> tuple[str, dict[str, str]]:
    """Gzipped IDX files in a folder, reachable as a file:// URL the way Keras's host serves them."""
    served = tmp_path / "served"
    digests = write_dataset(served, arrays)
    for name in FILENAMES.values():
        path = served / name
        path.with_name(name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
    return served.as_uri(), digests


def source_overrides(*sources: str) -> str:
    return "dataset.sources=[" + ",".join(sources) + "]"


def keras_idx(base_url: str) -> str:
    return f"{{_target_:mnist_exp.data.sources.KerasIdx,base_url:'{base_url}',timeout:2}}"


def test_pull_fails_over_to_the_next_source_then_uses_the_cache(tmp_path, arrays, capsys) -> None:
    url, digests = served_dataset(tmp_path, arrays)
    cache = tmp_path / "cache"
    overrides = dataset_overrides(cache, digests, N_TRAIN, N_TEST)
    cfg = compose([*overrides, source_overrides(keras_idx(REFUSED), keras_idx(url))]).dataset

    splits = pull(cfg)
    np.testing.assert_array_equal(splits.test_images, arrays["test_images"])
    assert "keras-idx failed: download of http://127.0.0.1:9" in capsys.readouterr().err
    assert DatasetFiles.from_config(cfg).provenance()["source"] == "keras-idx"
    assert sorted(p.name for p in cache.iterdir()) == sorted([*FILENAMES.values(), "source.json"])

    # A second pull is served by the verified cache: every source could be unreachable.
    offline = compose([*overrides, source_overrides(keras_idx(REFUSED))]).dataset
    np.testing.assert_array_equal(pull(offline).train_labels, arrays["train_labels"])


def test_pull_rejects_a_source_whose_files_do_not_verify(tmp_path, arrays) -> None:
    url, digests = served_dataset(tmp_path, synthetic_arrays(N_TRAIN, N_TEST, seed=1))
    cfg = compose(
        [
            *dataset_overrides(tmp_path / "cache", dict.fromkeys(digests, "0" * 64), N_TRAIN, N_TEST),
            source_overrides(keras_idx(url)),
        ]
    ).dataset
    with pytest.raises(DataError) as error:
        pull(cfg)
    assert "keras-idx: " in str(error.value)
    assert "sha256 mismatch" in str(error.value)
    assert not (tmp_path / "cache" / FILENAMES["train_images"]).exists()


def test_when_every_source_fails_the_error_lists_each_reason(tmp_path, arrays) -> None:
    _, digests = served_dataset(tmp_path, arrays)
    npz = f"{{_target_:mnist_exp.data.sources.KerasNpz,url:'{REFUSED}/mnist.npz',sha256:'0',timeout:2}}"
    cfg = compose(
        [*dataset_overrides(tmp_path / "cache", digests, N_TRAIN, N_TEST), source_overrides(keras_idx(REFUSED), npz)]
    ).dataset
    with pytest.raises(DataError) as error:
        pull(cfg)
    message = str(error.value)
    assert "no source delivered verified files" in message
    assert f"cache {tmp_path / 'cache'}: " in message
    assert "keras-idx: download of http://127.0.0.1:9" in message
    assert "keras-npz: download of http://127.0.0.1:9/mnist.npz" in message


def test_training_loader_refuses_a_damaged_cache_instead_of_refetching(tmp_path, arrays) -> None:
    url, digests = served_dataset(tmp_path, arrays)
    cache = tmp_path / "cache"
    cfg = compose([*dataset_overrides(cache, digests, N_TRAIN, N_TEST), source_overrides(keras_idx(url))]).dataset
    load(cfg)  # an empty cache is provisioned by the loader itself
    damage_flip(cache / FILENAMES["train_labels"])
    with pytest.raises(DataError, match="sha256 mismatch"):
        load(cfg)
    pull(cfg)  # the fix the error names repairs it
    np.testing.assert_array_equal(load(cfg).train_labels, arrays["train_labels"])


def test_only_numpy_arrays_are_ever_unpickled() -> None:
    payload = pickle.dumps(np.arange(3))
    assert list(_NumpyOnlyUnpickler(io.BytesIO(payload)).load()) == [0, 1, 2]
    with pytest.raises(pickle.UnpicklingError, match="refusing to unpickle"):
        _NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(Path("x")))).load()


def test_cli_rejects_an_unknown_dataset(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["verify", "cifar"])
    assert exit_.value.code == 2
    assert "unknown dataset cifar; choose from cifar10, fashion_mnist, folder, mnist, npz" in capsys.readouterr().err
