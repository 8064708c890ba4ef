"""Classify files with a logged model, each prepared the way its model's dataset was made."""

from __future__ import annotations

from pathlib import Path

import mlflow.keras
import numpy as np
from mlflow import MlflowClient
from omegaconf import DictConfig

from mnist_exp.images import is_uniform, load_input
from mnist_exp.tracking.registry import ResolvedModel, stored_config


def preparation(dataset: DictConfig) -> str:
    """How the dataset's pictures were made: ``digit`` (MNIST's procedure) or ``fit`` (resized).

    Runs logged before datasets declared it: MNIST's are digits, every other dataset's are fitted.
    """
    return dataset.get("predict_as") or ("digit" if dataset.name == "mnist" else "fit")


def predict_files(
    client: MlflowClient, resolved: ResolvedModel, files: list[Path], max_pixels: int | None = None
) -> list[dict]:
    """One result per file: its class, class name and probability, or the error that kept it out.

    A file whose input holds no ink (blank, uniform, 1x1) is classified with a ``warning``;
    one of more than ``max_pixels`` pixels is refused before it is decoded.
    """
    dataset = stored_config(client, resolved.run).dataset
    shape = tuple(dataset.image_shape)
    prepare = preparation(dataset)
    model = mlflow.keras.load_model(resolved.uri)
    results: list[dict] = []
    inputs: list[np.ndarray] = []
    for path in files:
        try:
            inputs.append(load_input(path, shape, prepare, max_pixels))
            results.append({"file": str(path)})
            if is_uniform(inputs[-1]):
                results[-1]["warning"] = "the image is uniform (no ink): its class means nothing"
        except Exception as exc:  # any unreadable file is reported on its own line
            results.append({"file": str(path), "error": f"{type(exc).__name__}: {exc}"})
    if inputs:
        probabilities = model.predict(np.stack(inputs), verbose=0)
        for result, row in zip((r for r in results if "error" not in r), probabilities, strict=True):
            label = int(row.argmax())
            result |= {"class": label, "name": dataset.class_names[label], "probability": float(row[label])}
    return results
