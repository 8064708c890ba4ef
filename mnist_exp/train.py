"""``train(cfg)``: one experiment from a composed config to a finished MLflow run.

The recipe: check the config, open the run (``TrainingRun`` decides which run this is),
prepare the data and model, fit, finish. TensorFlow, Keras and MLflow load only once the
config has passed its checks, so a mistake is answered at once.
"""

from __future__ import annotations

import importlib.util
import logging
from types import ModuleType

from omegaconf import DictConfig

from mnist_exp import errors, schema, speed
from mnist_exp.tracking import multirun, names

log = logging.getLogger(__name__)


def fitting() -> ModuleType:
    """``mnist_exp.fitting`` (TensorFlow, Keras, MLflow and the run's steps), imported the first time it is needed."""
    if importlib.util.find_spec("tensorflow") is None:
        raise errors.UserError(
            "TensorFlow is not installed. Fix: pip install 'mnist-exp[cpu]', or 'mnist-exp[gpu]' on a machine "
            "with an NVIDIA GPU (from a checkout: pip install -e '.[cpu]')"
        )
    return speed.frozen_import("mnist_exp.fitting")


def train(cfg: DictConfig) -> dict[str, float | str]:
    """Train and evaluate the configured model, tracked as one MLflow run; return its metrics.

    The config is checked before anything is loaded or recorded. The returned
    ``objective`` is the value of ``cfg.objective.metric``, what sweeps optimise.
    In a sweep the run is a child of the sweep's parent run, in the parent's
    experiment. With ``resume`` set, the named run continues from its checkpoint;
    so does a run of this config whose process died. Ctrl-C or SIGTERM ends the
    run KILLED with its metrics and last checkpoint. What the store does not take
    in time waits in the run's journal (``RunRecord``).
    """
    schema.validate(cfg)
    digest = schema.config_hash(cfg)
    if multirun.in_sweep():  # a worker of local_parallel on a machine with GPUs: one GPU each, before TensorFlow starts
        from mnist_exp.cluster.gpus import one_gpu_per_worker

        one_gpu_per_worker(multirun.parent_run_id() or "local")
    steps = fitting()
    from mnist_exp.tracking.training_run import TrainingRun, skipped

    with TrainingRun(cfg, digest) as run:
        if run.done is not None:
            return skipped(run.done, run.cfg.objective.metric)
        if run.start is not None:
            schema.validate(run.cfg)  # the config the run logged, as today's schema reads it
        setup = steps.prepare(run.cfg, run.start)
        record = run.begin(steps.run_tags(run.cfg, setup))
        if run.start is None:
            steps.log_config(run.cfg, record, setup)
        results = steps.fit_and_log(run.cfg, setup, run)
        run.finish()
    return finish(run.cfg, results, record.run_id)


def finish(cfg: DictConfig, results: dict[str, float], run_id: str) -> dict[str, float | str]:
    """Say what the run reached and which metric its objective used; the results with the objective."""
    metric = objective_metric(cfg.objective.metric, results)
    has_val = names.BEST_VAL_ACCURACY in results
    log.info(
        "test accuracy %.4f, test loss %.4f, %s; objective %s = %.4f (run %s)",
        results[names.TEST_ACCURACY],
        results[names.TEST_LOSS],
        f"best val accuracy {results[names.BEST_VAL_ACCURACY]:.4f}" if has_val else "no validation data",
        metric if metric == cfg.objective.metric else f"{metric} (no validation data for {cfg.objective.metric})",
        results[metric],
        run_id,
    )
    return {**results, "objective": results[metric], "objective_metric": metric, "run_id": run_id}


def objective_metric(configured: str, results: dict[str, float]) -> str:
    """The metric the objective uses: the configured one, or its test counterpart when there was no validation."""
    return configured if configured in results else configured.replace("best_val_", "test_")
