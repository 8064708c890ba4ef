"""Learning-rate schedules, built from config with ``_partial_``: the run supplies the rate and its step counts."""

from __future__ import annotations

import keras


def constant(learning_rate: float, steps_per_epoch: int, epochs: int) -> float:
    """The learning rate stays ``learning_rate`` for the whole run (the reference recipe)."""
    return learning_rate


def warmup_cosine(
    learning_rate: float, steps_per_epoch: int, epochs: int, warmup_epochs: float = 0.0, final_fraction: float = 0.0
) -> keras.optimizers.schedules.LearningRateSchedule:
    """Linear warm-up from 0 over ``warmup_epochs``, then a cosine down to ``final_fraction * learning_rate``."""
    warmup = round(warmup_epochs * steps_per_epoch)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else learning_rate,
        decay_steps=epochs * steps_per_epoch - warmup,
        alpha=final_fraction,
        warmup_target=learning_rate if warmup else None,
        warmup_steps=warmup,
    )
