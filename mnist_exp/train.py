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
from dataclasses import dataclass, replace
from types import ModuleType
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

from mnist_exp import errors, schema
from mnist_exp.tracking import multirun, names

if TYPE_CHECKING:
    from mlflow.entities import Run

    from mnist_exp.fitting import Destination
    from mnist_exp.tracking.checkpoints import ResumePoint

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


@dataclass(frozen=True)
class Decision:
    """What a training start does: its config, the run it continues (None: a new one), or the run it reports."""

    cfg: DictConfig
    start: ResumePoint | None
    destination: Destination  # the store, experiment and sweep parent the run goes to
    digest: str
    done: Run | None = None  # a FINISHED run with this config, reported instead of training


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
    start = None
    if cfg.get("resume"):
        from mnist_exp.tracking.checkpoints import resume_point

        start = resume_point(cfg)  # claims the run: a second process resuming it is refused here
    try:
        decision = decide(start.cfg if start else cfg, start)
        start = decision.start
        if decision.done is not None:
            return skipped(decision.done, decision.cfg.objective.metric)
        steps, cfg = fitting(), decision.cfg
        setup = steps.prepare(cfg, start)
        record = steps.open_run(cfg, decision.destination, setup, decision.digest)
    except BaseException:
        if start is not None:  # claimed, never trained: as it was
            start.give_back()
        raise
    from mnist_exp.tracking import runs
    from mnist_exp.tracking.checkpoints import checkpoint_folder

    multirun.note_run(record.run_id)
    with runs.recorded_stop(record, checkpoint_folder(record.folder)):
        if start is None:
            steps.log_config(cfg, record, setup)
        results = steps.fit_and_log(cfg, setup.model, setup.trainer, setup.data, record, start)
        record.terminate("FINISHED")
    if record.close():
        shutil.rmtree(record.folder, ignore_errors=True)  # all is in the store: checkpoint and journal done with
    return finish(cfg, results, record.run_id)


def decide(cfg: DictConfig, start: ResumePoint | None) -> Decision:
    """Check the config, then choose: the run named by ``resume``, a FINISHED twin to report,
    the sweep's earlier job with this config, a run of this config whose process died, or a new run.

    Continuing a run claims it (``resume_point``), the last thing done here.
    """
    schema.validate(cfg)
    if multirun.in_sweep():  # a worker of local_parallel on a machine with GPUs: one GPU each, before TensorFlow starts
        from mnist_exp.cluster.gpus import one_gpu_per_worker

        one_gpu_per_worker(multirun.parent_run_id() or "local")
    steps = fitting()  # TensorFlow, Keras and MLflow: loaded once the config is known good
    from mnist_exp.tracking import runs
    from mnist_exp.tracking.checkpoints import resume_point

    destination = steps.open_destination(cfg)  # also marks the experiment's runs whose process died
    digest = runs.config_hash(cfg)
    decision = Decision(cfg, start, destination, digest)
    if start is not None:
        return decision
    client, parent = destination.client, destination.parent
    if cfg.training.skip_if_done and (twin := runs.finished_twin(client, destination.experiment_id, digest)):
        return replace(decision, done=twin)
    if parent is not None:  # a sweep run again: each config once, KILLED ones resumed
        earlier = runs.sweep_sibling(client, parent, digest)
        if earlier is not None and earlier.info.status == "FINISHED":
            return replace(decision, done=earlier)
    else:
        earlier = runs.died_twin(client, destination.experiment_id, digest)
    if earlier is None:
        return decision
    log.info("continuing run %s (%s), which this config left unfinished", earlier.info.run_id, earlier.info.run_name)
    try:
        start = resume_point(OmegaConf.merge(cfg, {"resume": earlier.info.run_id}))
    except schema.ConfigError as exc:  # it died before its config was logged: a new run instead
        if parent is not None:
            raise
        log.warning("run %s cannot be continued (%s): a new run starts", earlier.info.run_id, exc)
        runs.not_resumable(client, earlier.info.run_id)
        return decision
    return replace(decision, cfg=start.cfg, start=start)


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
