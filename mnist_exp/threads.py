"""Batches in shards, and TensorFlow's thread pools, as a job's ``Plan`` says.

On a few CPU cores the convolutions of one 64-image batch do not split well
across threads (they wait on each other). Split into one part per thread, each
part computed whole on its own thread, the same batch trains faster, and the
loss, gradients and metrics are still those of the whole batch.
"""

from __future__ import annotations

import itertools
import logging

import keras
import tensorflow as tf

from mnist_exp.plan import Plan

log = logging.getLogger(__name__)


def set_threads(plan: Plan) -> None:
    """Size TensorFlow's thread pools; 0 keeps its default.

    Pools are fixed once TensorFlow starts, so a worker process that already ran a
    job (joblib reuses them) keeps the setting of its first job.
    """
    threading = tf.config.threading
    wanted = (plan.intra_op_threads, plan.inter_op_threads)
    if wanted == (threading.get_intra_op_parallelism_threads(), threading.get_inter_op_parallelism_threads()):
        return
    try:
        threading.set_intra_op_parallelism_threads(plan.intra_op_threads)
        threading.set_inter_op_parallelism_threads(plan.inter_op_threads)
    except RuntimeError:
        log.warning("TensorFlow already started in this process; threads %s (per op, between ops) not applied", wanted)


class BatchShards(keras.Model):
    """``model`` applied to ``shards`` consecutive parts of each batch, its outputs joined in order.

    The parts share no work until the loss, so TensorFlow's threads between ops
    compute them side by side. Only for training here: the model that is saved
    and logged is ``model`` itself.
    """

    def __init__(self, model: keras.Model, shards: int, **kwargs: object) -> None:
        super().__init__(name=f"{model.name}_in_{shards}_shards", **kwargs)
        self.inner, self.shards = model, shards

    def call(self, images: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        n = keras.ops.shape(images)[0]
        # TensorFlow's fused convolution fails on an empty part, so a batch of fewer
        # images than parts gets blank ones, whose outputs are dropped (no gradient flows to them).
        blanks = keras.ops.maximum(self.shards - n, 0)
        images = keras.ops.pad(images, [[0, blanks]] + [[0, 0]] * (len(images.shape) - 1))
        bounds = [i * (n + blanks) // self.shards for i in range(self.shards + 1)]
        parts = [self.inner(images[start:end], training=training) for start, end in itertools.pairwise(bounds)]
        return keras.ops.concatenate(parts, axis=0)[:n]


def in_shards(model: keras.Model, shards: int) -> keras.Model:
    """What ``fit`` and ``predict`` run: ``model`` itself for one shard, else ``model`` in ``BatchShards``.

    The shards are compiled like ``model`` and share its optimizer, so saving
    ``model`` saves the optimizer's state too.
    """
    if shards == 1:
        return model
    trainer = BatchShards(model, shards)
    compiled = keras.saving.deserialize_keras_object(model.get_compile_config())
    trainer.compile(**{**compiled, "optimizer": model.optimizer})
    return trainer
