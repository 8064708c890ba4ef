"""Find, register and load the models that runs logged."""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
from mlflow import MlflowClient
from mlflow.entities import LoggedModelStatus, Run
from mlflow.entities.model_registry import ModelVersion
from omegaconf import DictConfig, OmegaConf

from mnist_exp.errors import UserError
from mnist_exp.tracking import names, store


class ModelLookupError(UserError):
    """A run or model reference that does not lead to a logged model."""


@dataclass(frozen=True)
class ResolvedModel:
    """A loadable model URI and the run that trained it."""

    uri: str
    run: Run


def training_run(client: MlflowClient, run_id: str) -> Run:
    """The run itself, or for a sweep's parent run its best child."""
    try:
        run = client.get_run(run_id)
    except mlflow.exceptions.MlflowException as exc:
        store.check_intact(client.tracking_uri)  # a damaged table reads as empty: say so rather than "no run"
        raise ModelLookupError(f"no run {run_id} in {client.tracking_uri}") from exc
    if run.data.tags.get(names.SWEEP_ROLE_TAG) == names.SWEEP_PARENT_ROLE:
        best = run.data.tags.get(names.BEST_RUN_ID_TAG)
        if best is None:
            raise ModelLookupError(f"sweep {run_id} has no finished job to take a model from")
        run = client.get_run(best)
    return run


def logged_model_uri(run: Run, epoch: int | None = None) -> str:
    """``models:/<model id>`` of the run's model (``epoch``: of that epoch's), logged whole (its upload finished).

    The run's model is the one tagged ``run_model`` (``tracking.checkpoints``: the best epoch's,
    or the last's); a run logged before checkpoints were models has one model, which is taken.
    """
    models = mlflow.search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"source_run_id = '{run.info.run_id}'",
        order_by=[{"field_name": "creation_time", "ascending": False}],
        output_format="list",
    )
    if not models:
        raise ModelLookupError(f"run {run.info.run_id} logged no model (was it run with tracking.log_model=false?)")
    if epoch is not None:
        chosen = [m for m in models if m.tags.get(names.MODEL_EPOCH_TAG) == str(epoch)]
        if not chosen:
            logged = sorted({int(m.tags[names.MODEL_EPOCH_TAG]) for m in models if names.MODEL_EPOCH_TAG in m.tags})
            raise ModelLookupError(
                f"run {run.info.run_id} logged no model of epoch {epoch}; it logged epochs {logged or 'unnamed'}. "
                "Fix: pass one of those, or train with tracking.checkpoints=every to log every epoch's"
            )
    else:
        chosen = [m for m in models if m.tags.get(names.RUN_MODEL_TAG) == "true"] or models
    ready = [m for m in chosen if m.status == LoggedModelStatus.READY]
    if not ready:
        raise ModelLookupError(
            f"run {run.info.run_id}: its model did not finish logging (status {chosen[0].status}). "
            f"Fix: mnist-exp resume={run.info.run_id}, or mnist-exp-sync if its store was away"
        )
    return f"models:/{ready[0].model_id}"


def stored_config(client: MlflowClient, run: Run) -> DictConfig:
    """The resolved config a run logged as ``config.yaml``."""
    path = client.download_artifacts(run.info.run_id, names.CONFIG_FILE)
    return OmegaConf.load(path)


RECORDING_GROUPS = ("tracking", "sweep")  # how a run is recorded: keys added since a run logged its config


def with_current_recording(logged: DictConfig, current: DictConfig) -> DictConfig:
    """A run's logged config, its recording groups completed by ``current``'s keys it lacks (a run logged
    before they existed); every logged value is kept."""
    return OmegaConf.merge({group: current[group] for group in RECORDING_GROUPS if group in current}, logged)


def resolve(client: MlflowClient, reference: str, epoch: int | None = None) -> ResolvedModel:
    """A model from ``models:/<name>/<version>``, ``models:/<model id>``, or a run or sweep id (its model, or
    its model of ``epoch``)."""
    if not reference.startswith("models:/"):
        run = training_run(client, reference)
        return ResolvedModel(logged_model_uri(run, epoch), run)
    if epoch is not None:
        raise ModelLookupError(f"--epoch picks one of a run's models; {reference} is one model. Fix: drop --epoch")
    parts = reference.removeprefix("models:/").split("/")
    try:
        if len(parts) == 2:
            run_id = client.get_model_version(parts[0], parts[1]).run_id
        else:
            run_id = client.get_logged_model(parts[0]).source_run_id
    except mlflow.exceptions.MlflowException as exc:
        store.check_intact(client.tracking_uri)
        raise ModelLookupError(f"no model {reference} in {client.tracking_uri}") from exc
    return ResolvedModel(reference, client.get_run(run_id))


def register(client: MlflowClient, run_id: str, epoch: int | None = None) -> ModelVersion:
    """Register a run's model (a sweep's: its best job's) under the name its config gives.

    Only a FINISHED run whose model finished logging is registered.
    """
    run = training_run(client, run_id)
    if run.info.status != "FINISHED":
        raise ModelLookupError(
            f"run {run.info.run_id} is {run.info.status}, not FINISHED: its model may be missing or partial. "
            f"Fix: mnist-exp resume={run.info.run_id}, then register it"
        )
    name = stored_config(client, run).tracking.registered_model_name
    tags = {names.MODEL_RUN_ID_TAG: run.info.run_id}
    if names.TEST_ACCURACY in run.data.metrics:
        tags[names.TEST_ACCURACY] = f"{run.data.metrics[names.TEST_ACCURACY]:.4f}"
    return mlflow.register_model(logged_model_uri(run, epoch), name, tags=tags)
