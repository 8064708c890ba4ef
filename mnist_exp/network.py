"""The Keras network, its optimizer and its learning-rate schedule, built from their config nodes."""

from __future__ import annotations

from collections.abc import Callable

import keras
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from mnist_exp.schema import ConfigError


def cannot_build(node: DictConfig, key: str, exc: Exception) -> ConfigError:
    """The error for a node whose target or arguments failed: it names ``key``, the target and the cause."""
    return ConfigError(f"{key}: cannot build {node.get('_target_')!r}: {exc.__cause__ or exc}")


def build(node: DictConfig, key: str, **arguments: object) -> object:
    """What a ``_target_`` node builds; a bad target or argument is a ConfigError naming ``key``."""
    try:
        return instantiate(node, **arguments)
    except InstantiationException as exc:
        raise cannot_build(node, key, exc) from exc


def build_layer(spec: DictConfig, name: str, key: str, **overrides: str) -> keras.layers.Layer:
    """One layer from its spec, named ``name``."""
    return build(spec, key, name=name, **overrides)


def build_model(model_cfg: DictConfig, dataset_cfg: DictConfig) -> keras.Sequential:
    """A Sequential model: the dataset's input, the ``layers`` in order (a null one left out), then ``output``.

    Under a mixed-precision policy the output layer still computes in float32,
    so the softmax and the loss keep full precision.
    """
    layers = [
        build_layer(spec, name, f"model.layers.{name}") for name, spec in model_cfg.layers.items() if spec is not None
    ]
    mixed = keras.mixed_precision.global_policy().name != "float32"
    output = build_layer(model_cfg.output, "output", "model.output", **({"dtype": "float32"} if mixed else {}))
    try:
        return keras.Sequential(
            [keras.Input(shape=tuple(dataset_cfg.image_shape)), *layers, output], name=model_cfg.name
        )
    except ValueError as exc:  # layers that do not fit together, e.g. a kernel larger than its input
        shape = tuple(dataset_cfg.image_shape)
        raise ConfigError(f"model.layers: the layers do not fit the {shape} input: {exc}") from exc


def build_partial(node: DictConfig, key: str, **arguments: object) -> object:
    """Call a ``_partial_`` config node with the ``arguments`` known only at run time; errors name ``key``."""
    make: Callable[..., object] = build(node, key)
    try:
        return make(**arguments)
    except (TypeError, ValueError) as exc:
        raise cannot_build(node, key, exc) from exc


def build_loss(node: str | DictConfig) -> keras.losses.Loss | Callable[..., object]:
    """The loss a name gives (``categorical_crossentropy``), or the one a ``_target_`` node builds."""
    if isinstance(node, str):
        try:
            return keras.losses.get(node)
        except ValueError as exc:
            raise ConfigError(f"model.loss: unknown loss {node!r}") from exc
    return build(node, "model.loss")


def build_optimizer(cfg: DictConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The optimizer, its learning rate shaped over the run's steps by ``lr_schedule``."""
    schedule = build_partial(
        cfg.lr_schedule,
        "lr_schedule",
        learning_rate=cfg.optimizer.learning_rate,
        steps_per_epoch=steps_per_epoch,
        epochs=cfg.training.epochs,
    )
    return build_partial(cfg.optimizer, "optimizer", learning_rate=schedule)


def compile_model(
    cfg: DictConfig, steps_per_epoch: int, precision: str = "float32", jit_compile: bool = False
) -> keras.Model:
    """The configured model in ``precision`` (a Keras dtype policy), compiled with its optimizer, loss and accuracy.

    Under ``mixed_float16`` Keras scales the loss itself (its LossScaleOptimizer).
    The optimizer's slots and the accuracy's counts are created here: left to the
    first training step, they are created while TensorFlow traces it, and it then
    traces the step a second time.
    """
    keras.mixed_precision.set_global_policy(precision)
    model = build_model(cfg.model, cfg.dataset)
    optimizer = build_optimizer(cfg, steps_per_epoch)
    model.compile(
        optimizer=optimizer,
        loss=build_loss(cfg.model.loss),
        # the labels are one-hot; a metric object has its variables now, not at the first step
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        steps_per_execution=cfg.training.steps_per_execution,
        jit_compile=jit_compile,
    )
    model.optimizer.build(model.trainable_variables)  # under mixed_float16, its LossScaleOptimizer
    return model
