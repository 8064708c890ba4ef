"""The performance tricks on the default path, each with why it is there and the benchmark that shows it.

Measured figures live in ``benchmarks/RESULTS.md``, never here. The tricks:

- ``frozen_import``: import TensorFlow, Keras and MLflow with the garbage collector paused,
  then freeze what they made, so later collections skip millions of lifelong objects
  (``benchmarks/speedrun.py``, the short runs where collections showed).
- ``fixed_pipeline``: tf.data without its autotuner, whose sleeping thread delayed each
  epoch's start and fit's return (``benchmarks/compare.py``).
- ``predict_batches``: prediction one batch per call, since ``predict`` with
  ``steps_per_execution`` > 1 traces every batch of a call into one graph, which took far
  longer for a sharded model than tracing one (``benchmarks/compare.py``).
- ``predict_while``: the test prediction runs on a worker thread while the run's
  artifacts are logged, since both wait on other things than the GIL (``benchmarks/compare.py``).
- Batch hooks on ``callbacks.StopOnSignal``: with one callback that has them, Keras calls
  batch ends in line instead of handing each to a thread pool (``benchmarks/compare.py``).

What must not live here: anything that changes what a run computes. Each trick leaves the
results as they were; a choice that changes them (precision, threads, shards) is the
machine's plan (``mnist_exp.plan``), recorded with the run.
"""

from __future__ import annotations

import gc
import importlib
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras
    import numpy as np
    import tensorflow as tf


def frozen_import(name: str) -> ModuleType:
    """Module ``name``, imported the first time with the collector paused and what it made frozen.

    Frozen once: a later job's garbage stays collectable.
    """
    if name not in sys.modules:
        gc.disable()
        try:
            importlib.import_module(name)
        finally:
            gc.freeze()
            gc.enable()
    return sys.modules[name]


def fixed_pipeline() -> tf.data.Options:
    """tf.data options without autotuning: one map and two prefetched batches keep the model fed."""
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return options


def predict_batches(model: keras.Model, batches: tf.data.Dataset) -> np.ndarray:
    """The model's class probabilities for the images of each (images, labels) batch, in order, one per call."""
    import numpy as np

    return np.concatenate([model.predict_on_batch(images) for images, _ in batches])


def predict_while(log: Callable[[], None], model: keras.Model, batches: tf.data.Dataset) -> np.ndarray:
    """The model's class probabilities for ``batches``, predicted on a worker thread while ``log`` runs here."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-prediction") as worker:
        predicted = worker.submit(predict_batches, model, batches)
        log()
        return predicted.result()
