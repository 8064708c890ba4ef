"""Build the Keras model and optimizer from their config nodes."""

from __future__ import annotations

import keras
from hydra.utils import instantiate
from omegaconf import DictConfig


def build_model(model_cfg: DictConfig, dataset_cfg: DictConfig) -> keras.Sequential:
    """A Sequential model: the dataset's input, the ``layers`` in order, then ``output``."""
    layers = [instantiate(spec, name=name) for name, spec in model_cfg.layers.items()]
    return keras.Sequential(
        [keras.Input(shape=tuple(dataset_cfg.image_shape)), *layers, instantiate(model_cfg.output, name="output")],
        name=model_cfg.name,
    )


def build_optimizer(name: str, lr: float, **settings: float | bool) -> keras.optimizers.Optimizer:
    """A Keras optimizer by its registered name, e.g. ``adam`` with ``lr`` and its other settings."""
    return keras.optimizers.get({"class_name": name, "config": {"learning_rate": lr, **settings}})
