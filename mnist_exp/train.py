"""``train(cfg)``: one experiment from a composed config to a finished MLflow run.

The recipe: the resume point, one check of the config, the store, the machine's plan,
seeds, data and model, the run, the fit, the results. TensorFlow, Keras and MLflow
load only once the config has passed its checks, so a mistake is answered at once.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import logging
import shutil
import sys
from types import ModuleType
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from mnist_exp import errors, schema
from mnist_exp.tracking import jobs, names

if TYPE_CHECKING:
    from mlflow.entities import Run

log = logging.getLogger(__name__)
FITTING = "mnist_exp.fitting"


def fitting() -> ModuleType:
    """``mnist_exp.fitting``, imported the first time with the garbage collector paused.

    TensorFlow, Keras and MLflow make millions of objects that live as long as the
    process, and every full collection walked them all, a visible share of a short
    run (``benchmarks/speedrun.py``). Frozen after the import, they are skipped; collections then look
    only at what the runs allocate. (Frozen once: a later job's garbage stays collectable.)
    """
    if FITTING not in sys.modules:
        if importlib.util.find_spec("tensorflow") is None:
            raise errors.UserError(
                "TensorFlow is not installed. Fix: pip install 'mnist-exp[cpu]', or 'mnist-exp[gpu]' on a machine "
                "with an NVIDIA GPU (from a checkout: pip install -e '.[cpu]')"
            )
        gc.disable()
        try:
            importlib.import_module(FITTING)
        finally:
            gc.freeze()
            gc.enable()
    return sys.modules[FITTING]


def train(cfg: DictConfig) -> dict[str, float | str]:
    """Train and evaluate the configured model, tracked as one MLflow run; return its metrics.

    The config is checked before anything is loaded or recorded. The returned
    ``objective`` is the value of ``cfg.objective.metric``, what sweeps optimise.
    In a sweep the run is a child of the sweep's parent run, in the parent's
    experiment. With ``resume`` set, the named run continues from its checkpoint.
    Ctrl-C or SIGTERM ends the run KILLED with its metrics and last checkpoint.
    What the store does not take in time waits in the run's journal (``RunRecord``).
    """
    start = None
    if cfg.get("resume"):
        from mnist_exp.tracking.checkpoints import resume_point

        start = resume_point(cfg)
        cfg = start.cfg
    schema.validate(cfg)
    if jobs.in_sweep():  # a worker of local_parallel on a machine with GPUs: one GPU each, before TensorFlow starts
        from mnist_exp.cluster.gpus import one_gpu_per_worker

        one_gpu_per_worker(jobs.parent_run_id() or "local")
    steps = fitting()  # TensorFlow, Keras and MLflow: loaded once the config is known good
    from mnist_exp.tracking import runs
    from mnist_exp.tracking.checkpoints import checkpoint_folder, resume_point

    experiment = steps.open_experiment(cfg)
    digest = runs.config_hash(cfg)
    if cfg.training.skip_if_done and start is None:
        twin = runs.finished_twin(experiment.client, experiment.experiment_id, digest)
        if twin is not None:
            return skipped(twin, cfg.objective.metric)
    if experiment.parent is not None and start is None:  # a sweep run again: each config once, KILLED ones resumed
        sibling = runs.sweep_sibling(experiment.client, experiment.parent, digest)
        if sibling is not None and sibling.info.status == "FINISHED":
            return skipped(sibling, cfg.objective.metric)
        if sibling is not None:
            cfg = cfg.copy()
            cfg.resume = sibling.info.run_id
            start = resume_point(cfg)
            cfg = start.cfg
    setup = steps.prepare(cfg, start)

    record = steps.open_run(cfg, experiment, setup, digest)
    jobs.note_run(record.run_id)
    with runs.recorded_stop(record, checkpoint_folder(record.folder)):
        if start is None:
            steps.log_config(cfg, record, setup)
        results = steps.fit_and_log(cfg, setup.model, setup.trainer, setup.data, record, start)
        record.terminate("FINISHED")
    if record.close():
        shutil.rmtree(record.folder, ignore_errors=True)  # all is in the store: checkpoint and journal done with
    return finish(cfg, results, record.run_id)


def skipped(twin: Run, metric: str) -> dict[str, float | str]:
    """The results of a finished run with the same config, reported instead of training again."""
    log.info("skipped: run %s (%s) already has this config", twin.info.run_id, twin.info.run_name)
    return {**twin.data.metrics, "objective": twin.data.metrics[metric], "run_id": twin.info.run_id, "skipped": True}


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
