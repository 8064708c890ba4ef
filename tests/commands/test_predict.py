"""Using results: register a run's model, classify users' images and arrays, load it as pyfunc."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
from helpers import render_digit
from mlflow import MlflowClient

from mnist_exp.commands.predict import main as predict_main
from mnist_exp.commands.register import main as register_main
from mnist_exp.images import normalize, to_gray

pytestmark = pytest.mark.slow  # they train (the shared three-epoch run among them)


@pytest.fixture(scope="module")
def store_uri(trained_run) -> str:
    _, store = trained_run
    return f"sqlite:///{store / 'mlflow.db'}"


@pytest.fixture(scope="module")
def run_id(trained_run) -> str:
    return trained_run[0]["run_id"]


@pytest.fixture
def pictures(tmp_path: Path) -> dict[str, tuple[Path, int]]:
    """Digits drawn at 200x200 and 90x90, light on dark and dark on light, as PNG and JPEG."""
    files = {}
    for digit in range(10):
        dark = digit % 2 == 0
        path = tmp_path / f"digit{digit}.{'png' if dark else 'jpg'}"
        render_digit(digit, size=200 if dark else 90, dark_on_light=dark).save(path)
        files[path.name] = (path, digit)
    return files


def predictions(capsys, *argv: str) -> tuple[int, list[dict]]:
    code = predict_main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_normalization_matches_mnist_conventions(tmp_path) -> None:
    light = tmp_path / "light.png"
    dark = tmp_path / "dark.png"
    render_digit(7, size=300).save(light)
    render_digit(7, size=120, dark_on_light=True).save(dark)
    a, b = normalize(to_gray(light)), normalize(to_gray(dark))
    assert a.shape == (28, 28) and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 1.0
    rows, cols = np.nonzero(a > 0.1)
    assert max(np.ptp(rows), np.ptp(cols)) < 20  # the digit's box fits 20x20
    mass = np.indices(a.shape).reshape(2, -1) @ a.ravel() / a.sum()
    assert np.allclose(mass, 13.5, atol=1.0)  # centred by mass
    assert np.abs(a - b).mean() < 0.05  # dark-on-light is inverted to the same input


def test_predict_classifies_pictures_of_any_size(capsys, pictures, store_uri, run_id) -> None:
    code, results = predictions(
        capsys, "--model", run_id, "--tracking-uri", store_uri, *(str(p) for p, _ in pictures.values())
    )
    assert code == 0
    assert [r["file"] for r in results] == [str(p) for p, _ in pictures.values()]
    correct = sum(r["class"] == digit for r, (_, digit) in zip(results, pictures.values(), strict=True))
    assert correct >= 8, results
    for r in results:
        assert r["name"] == str(r["class"])
        assert 0.0 < r["probability"] <= 1.0


def test_bad_files_get_their_own_error_and_the_rest_are_classified(
    capsys, tmp_path, pictures, store_uri, run_id
) -> None:
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really a picture")
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((32, 32)))
    good_array = tmp_path / "good.npy"
    np.save(good_array, normalize(to_gray(pictures["digit4.png"][0])) * 255)
    good = pictures["digit4.png"][0]
    code = predict_main(
        ["--model", run_id, "--tracking-uri", store_uri, str(corrupt), str(good), str(wrong), str(good_array)]
    )
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert lines[0].startswith(f"{corrupt}: error: UnidentifiedImageError")
    assert lines[1].startswith(f"{good}: 4 (4) p=")
    assert lines[2] == f"{wrong}: error: ValueError: array has shape (32, 32); expected (28, 28, 1) or (28, 28)"
    assert lines[3].startswith(f"{good_array}: 4 (4) p=")


def test_register_prints_a_registry_uri_that_predict_and_pyfunc_load(
    capsys, pictures, store_uri, run_id, trained_run
) -> None:
    assert register_main([run_id, "--tracking-uri", store_uri]) == 0
    uri = capsys.readouterr().out.strip()
    assert uri == "models:/mnist-cnn/1"
    client = MlflowClient(store_uri)
    version = client.get_model_version("mnist-cnn", "1")
    assert version.tags["test_accuracy"] == f"{trained_run[0]['test_accuracy']:.4f}"
    assert version.run_id == run_id

    code, results = predictions(capsys, "--model", uri, "--tracking-uri", store_uri, str(pictures["digit3.jpg"][0]))
    assert code == 0 and results[0]["class"] == 3

    mlflow.set_tracking_uri(store_uri)
    pyfunc = mlflow.pyfunc.load_model(uri)
    batch = np.stack([normalize(to_gray(pictures["digit3.jpg"][0]))[..., None]])
    assert np.asarray(pyfunc.predict(batch)).argmax(axis=1).tolist() == [3]


def test_register_takes_the_best_job_of_a_sweep(capsys, store_uri, run_id) -> None:
    client = MlflowClient(store_uri)
    experiment_id = client.get_run(run_id).info.experiment_id
    parent = client.create_run(experiment_id, tags={"sweep.role": "parent", "best_run_id": run_id})
    assert register_main([parent.info.run_id, "--tracking-uri", store_uri]) == 0
    version = capsys.readouterr().out.strip().rsplit("/", 1)[1]
    assert client.get_model_version("mnist-cnn", version).run_id == run_id


def test_unknown_model_is_a_clear_error(capsys, store_uri) -> None:
    assert predict_main(["--model", "models:/nope/1", "--tracking-uri", store_uri, "x.png"]) == 1
    assert f"no model models:/nope/1 in {store_uri}" in capsys.readouterr().err


def test_register_refuses_a_run_that_did_not_finish(capsys, store_uri, run_id) -> None:
    client = MlflowClient(store_uri)
    killed = client.create_run(client.get_run(run_id).info.experiment_id)
    client.set_terminated(killed.info.run_id, "KILLED")
    assert register_main([killed.info.run_id, "--tracking-uri", store_uri]) == 1
    error = capsys.readouterr().err
    assert f"error: run {killed.info.run_id} is KILLED, not FINISHED" in error
    assert f"Fix: mnist-exp resume={killed.info.run_id}" in error


def test_predict_refuses_an_array_that_is_not_finite(capsys, tmp_path, store_uri, run_id) -> None:
    broken = tmp_path / "nan.npy"
    np.save(broken, np.full((28, 28), np.nan, dtype=np.float32))
    assert predict_main(["--model", run_id, "--tracking-uri", store_uri, str(broken)]) == 1
    assert capsys.readouterr().out.strip() == f"{broken}: error: ValueError: array holds 784 NaN or infinite values"


def test_predict_warns_on_images_with_no_ink_and_refuses_huge_ones_before_decoding(
    capsys, tmp_path, pictures, store_uri, run_id
) -> None:
    from PIL import Image

    blank, grey, dot = tmp_path / "blank.png", tmp_path / "grey.png", tmp_path / "dot.png"
    Image.new("L", (56, 56), 0).save(blank)
    Image.new("L", (40, 30), 128).save(grey)
    Image.new("L", (1, 1), 255).save(dot)
    huge = tmp_path / "huge.png"
    Image.new("L", (3000, 2000), 0).save(huge)  # 6 M pixels, over the 5 M limit given below
    good = pictures["digit4.png"][0]
    files = [blank, grey, dot, huge, good]
    code = predict_main(["--model", run_id, "--tracking-uri", store_uri, "--max-pixels", "5000000", *map(str, files)])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    for line, path in zip(lines[:3], files[:3], strict=True):
        assert line.startswith(f"{path}: ") and line.endswith(
            "(warning: the image is uniform (no ink): its class means nothing)"
        ), line
    assert lines[3] == (
        f"{huge}: error: ImageTooLargeError: 3000x2000 is 6,000,000 pixels, more than the limit of 5,000,000; "
        "shrink it, or raise --max-pixels"
    )
    assert lines[4].startswith(f"{good}: 4 (4) p=") and "warning" not in lines[4]
