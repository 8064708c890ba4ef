"""Build the Keras model and optimizer from their config nodes."""

from __future__ import annotations

import math

import keras
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from mnist_exp.pipeline import split_sizes
from mnist_exp.schema import ConfigError


def build_layer(spec: DictConfig, name: str, key: str, **overrides: str) -> keras.layers.Layer:
    """One layer from its spec; a bad target or argument is a ConfigError naming ``key``."""
    try:
        return instantiate(spec, name=name, **overrides)
    except InstantiationException as exc:
        cause = exc.__cause__ or exc
        raise ConfigError(f"{key}: cannot build {spec.get('_target_')!r}: {cause}") from exc


def build_model(model_cfg: DictConfig, dataset_cfg: DictConfig) -> keras.Sequential:
    """A Sequential model: the dataset's input, the ``layers`` in order, then ``output``.

    Under a mixed-precision policy the output layer still computes in float32,
    so the softmax and the loss keep full precision.
    """
    layers = [build_layer(spec, name, f"model.layers.{name}") for name, spec in model_cfg.layers.items()]
    mixed = keras.mixed_precision.global_policy().name != "float32"
    output = build_layer(model_cfg.output, "output", "model.output", **({"dtype": "float32"} if mixed else {}))
    try:
        return keras.Sequential(
            [keras.Input(shape=tuple(dataset_cfg.image_shape)), *layers, output], name=model_cfg.name
        )
    except ValueError as exc:  # layers that do not fit together, e.g. a kernel larger than its input
        shape = tuple(dataset_cfg.image_shape)
        raise ConfigError(f"model.layers: the layers do not fit the {shape} input: {exc}") from exc


def build_optimizer(
    name: str, lr: float | keras.optimizers.schedules.LearningRateSchedule, **settings: float | bool
) -> keras.optimizers.Optimizer:
    """A Keras optimizer by its registered name, e.g. ``adam`` with ``lr`` and its other settings."""
    return keras.optimizers.get({"class_name": name, "config": {"learning_rate": lr, **settings}})


def learning_rate(cfg: DictConfig) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """``optimizer.lr``, constant or shaped over the run by ``lr_schedule``."""
    lr, schedule = cfg.optimizer.lr, cfg.lr_schedule
    if schedule.name == "constant":
        return lr
    steps_per_epoch = math.ceil(
        split_sizes(cfg.dataset.train_size, cfg.training.validation_split)[0] / cfg.training.batch_size
    )
    warmup = round(schedule.warmup_epochs * steps_per_epoch)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else lr,
        decay_steps=cfg.training.epochs * steps_per_epoch - warmup,
        alpha=schedule.final_fraction,
        warmup_target=lr if warmup else None,
        warmup_steps=warmup,
    )


def compile_model(cfg: DictConfig, precision: str = "float32", jit_compile: bool = False) -> keras.Model:
    """The configured model in ``precision`` (a Keras dtype policy), compiled with its optimizer, loss and accuracy.

    Under ``mixed_float16`` Keras scales the loss itself (its LossScaleOptimizer).
    """
    keras.mixed_precision.set_global_policy(precision)
    model = build_model(cfg.model, cfg.dataset)
    try:
        optimizer = instantiate(cfg.optimizer, lr=learning_rate(cfg))
    except InstantiationException as exc:
        raise ConfigError(f"optimizer: {exc.__cause__ or exc}") from exc
    try:
        loss = keras.losses.get(cfg.model.loss)
    except ValueError as exc:
        raise ConfigError(f"model.loss: unknown loss {cfg.model.loss!r}") from exc
    model.compile(
        optimizer=optimizer,
        loss=loss,
        metrics=["accuracy"],
        steps_per_execution=cfg.training.steps_per_execution,
        jit_compile=jit_compile,
    )
    return model
