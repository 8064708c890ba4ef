"""What a run records about itself (tags, params), and how its failures and stops are recorded."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import importlib.metadata
import logging
import platform
import subprocess
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Param, Run
from mlflow.tracking.context.registry import resolve_tags
from omegaconf import DictConfig, OmegaConf

from mnist_exp import errors, stops
from mnist_exp.display import cut
from mnist_exp.layout import checkout_root
from mnist_exp.tracking import liveness, names
from mnist_exp.tracking.params import flatten
from mnist_exp.tracking.record import RunRecord

log = logging.getLogger(__name__)
UNWRITABLE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES})  # a disk's faults, not the code's


def distribution_version(*names: str) -> str:
    """The installed version of the first distribution found among ``names``."""
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


def versions() -> dict[str, str]:
    """Versions of the interpreter and the libraries a result depends on."""
    return {
        "python": platform.python_version(),
        "tensorflow": distribution_version("tensorflow-cpu", "tensorflow"),
        "keras": distribution_version("keras"),
        "hydra": distribution_version("hydra-core"),
        "mlflow": distribution_version("mlflow"),
    }


def model_requirements() -> list[str]:
    """The pip requirements of a logged Keras model, pinned to what trained it."""
    tensorflow = "tensorflow-cpu" if distribution_version("tensorflow-cpu") != "not installed" else "tensorflow"
    return [f"{tensorflow}=={distribution_version(tensorflow)}", f"keras=={distribution_version('keras')}"]


def git_state(root: Path | None = None) -> tuple[str, bool]:
    """The checked-out commit and whether the work tree has uncommitted changes (unknown for an installed package)."""
    root = root or checkout_root()
    if root is None:
        return "unknown", False

    def git(*args: str) -> str:
        result = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)
        return result.stdout.strip() if result.returncode == 0 else ""

    commit = git("rev-parse", "HEAD") or "unknown"
    return commit, bool(git("status", "--porcelain", "--untracked-files=no"))


def run_tags(overrides: list[str], dataset_name: str, dataset_digest: str, seed: int) -> dict[str, str]:
    """Tags that say exactly what produced a run."""
    commit, dirty = git_state()
    tags = {
        names.OVERRIDES_TAG: " ".join(overrides),
        names.GIT_COMMIT_TAG: commit,
        names.GIT_DIRTY_TAG: str(dirty).lower(),
        names.GIT_COMMIT_MLFLOW_TAG: commit,
        names.DATASET_NAME_TAG: dataset_name,
        names.DATASET_DIGEST_TAG: dataset_digest,
        names.SEED_TAG: str(seed),
    }
    tags.update({f"{names.VERSION_TAG_PREFIX}{name}": version for name, version in versions().items()})
    return tags


def error_tags(exc: BaseException) -> dict[str, str]:
    """The error of a failed run, short enough for a tag (an error may name its own tags, as a divergence does)."""
    return getattr(exc, "tags", None) or {names.ERROR_TAG: f"{type(exc).__name__}: {exc}"[:4000]}


def finished_twin(client: MlflowClient, experiment_id: str, digest: str) -> Run | None:
    """A FINISHED run of the experiment whose config hashes to ``digest``."""
    runs = client.search_runs(
        [experiment_id],
        f"tags.`{names.CONFIG_HASH_TAG}` = '{digest}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0] if runs else None


def start_run(
    client: MlflowClient,
    experiment_id: str,
    name: str,
    tags: dict[str, str],
    parent: str | None = None,
    job: str | None = None,
    resume: str | None = None,
) -> str:
    """A new run of the experiment (a child of ``parent`` in a sweep) owned by this process, or the resumed one.

    A resumed run was claimed (``liveness.claim``) when its resume point was read.
    """
    if resume:
        return resume
    tags = tags | liveness.owner_tags()
    if parent is not None:  # the job number keeps names apart when two jobs' values round alike
        tags = tags | {names.PARENT_RUN_TAG: parent, names.SWEEP_JOB_TAG: str(job)}
        name = cut(name, f" #{job}")
    return client.create_run(experiment_id, run_name=name, tags=resolve_tags(tags)).info.run_id


@contextlib.contextmanager
def recorded_stop(record: RunRecord, checkpoint: Path) -> Iterator[None]:
    """Whatever stops the run early leaves it with its metrics so far and its last checkpoint.

    Ctrl-C, SIGTERM, a time limit or an exit ends the run KILLED with its reason, at once
    (the store gets one try per write, the rest waits in the journal); an error leaves it
    FAILED with the error as tags. A disk that is full or cannot be written ends the run
    FAILED as well, and is raised as one ``WriteError`` line naming the file and the fix.
    What cannot be written locally is skipped: the run's end reaches the store all the same.
    """
    try:
        yield
    except BaseException as exc:
        stopped = stops.is_stop(exc)
        lost: list[OSError] = []  # writes that neither the store nor the journal took (a full disk)

        def attempt(write: Callable[..., None], *args: Any) -> None:
            try:
                write(*args)
            except OSError as error:
                lost.append(error)

        if stopped:
            record.stopping.set()
            attempt(record.set_tags, {names.STOP_REASON_TAG: stops.reason(exc)})
        for name in (names.CHECKPOINT_MODEL, names.CHECKPOINT_STATE, names.CHECKPOINT_BEST):
            if (checkpoint / name).exists():
                attempt(record.log_file, checkpoint / name, names.CHECKPOINT_DIR)
        if stopped:
            log.warning(
                "stopped (%s): run %s ends KILLED; continue it with resume=%s",
                stops.reason(exc), record.run_id, record.run_id,
            )  # fmt: skip
        else:
            attempt(record.set_tags, error_tags(exc))
            attempt(record.log_text, traceback.format_exc(), names.ERROR_FILE)
        attempt(record.terminate, "KILLED" if stopped else "FAILED")
        attempt(record.close)
        problem = write_problem(exc, record)
        if lost and problem is None:  # the disk failed while the run ended: that is what the user must fix
            problem = write_problem(lost[0], record)
        if lost:
            log.debug("run %s: %d writes were lost (%s); the dead-run check ends it", record.run_id, len(lost), lost[0])
        if problem is not None:
            raise problem from exc
        raise


def write_problem(exc: BaseException, record: RunRecord) -> errors.WriteError | None:
    """A ``WriteError`` for a disk that is full or cannot be written, found in ``exc``'s chain; None otherwise."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in UNWRITABLE:
            where = exc.filename or record.folder
            return errors.WriteError(
                f"run {record.run_id}: cannot write {where}: {exc.strerror}. Fix: free space on its disk "
                f"(df {record.folder.parent}) or point tracking.runs_dir elsewhere, then continue the run with "
                f"resume={record.run_id}"
            )
        exc = exc.__cause__ or exc.__context__
    return None


def sweep_runs(client: MlflowClient, parent: str, tag: str, value: str) -> list[Run]:
    """The runs of the sweep ``parent`` whose ``tag`` is ``value``, newest first."""
    experiment_id = client.get_run(parent).info.experiment_id
    return client.search_runs(
        [experiment_id],
        f"tags.`{names.PARENT_RUN_TAG}` = '{parent}' and tags.`{tag}` = '{value}'",
        order_by=["attributes.start_time DESC"],
    )


def job_run(client: MlflowClient, parent: str, job: str) -> Run | None:
    """The run of job number ``job`` of the sweep ``parent`` (the newest, if a job ran twice); None if it has none."""
    found = sweep_runs(client, parent, names.SWEEP_JOB_TAG, job)
    return found[0] if found else None


def record_failed_job(
    client: MlflowClient, cfg: DictConfig, parent: str, job: str, overrides: list[str], exc: BaseException
) -> None:
    """Make sure a sweep job that failed shows as a FAILED child of ``parent``, with its error.

    A job that failed during training already has its run, ended FAILED by
    ``recorded_stop``; a job that failed before its run started gets one here.
    """
    if job_run(client, parent, job) is not None:
        return
    experiment_id = client.get_run(parent).info.experiment_id
    tags = {names.OVERRIDES_TAG: " ".join(overrides), **error_tags(exc)}
    try:
        name = cfg.tracking.run_name
        params = flatten(OmegaConf.to_container(cfg, resolve=True))
    except Exception:  # an unresolvable config is what failed: record the error alone
        name, params = "job", {}
    run_id = start_run(client, experiment_id, name, tags, parent, job)
    client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()])
    client.log_text(run_id, "".join(traceback.format_exception(exc)), names.ERROR_FILE)
    client.set_terminated(run_id, "FAILED")


def dataset_inputs(name: str, source: str, parts: dict[str, tuple[Any, Any]]) -> list[dict[str, str]]:
    """MLflow dataset entities, one per context (``training``, ``validation``, ``test``): images and labels.

    Each part's digest is the sha256 of its own arrays (MLflow keeps one input per name and
    digest, so parts must differ): the same data always has the same digest.
    """
    from mlflow.data.numpy_dataset import from_numpy

    inputs = []
    for context, (images, labels) in parts.items():
        if len(labels) == 0:
            continue
        digest = hashlib.sha256(np.ascontiguousarray(images)).hexdigest()[:16]
        with warnings.catch_warnings():  # MLflow registers its local source twice, then warns that it is ambiguous
            warnings.filterwarnings("ignore", "The specified dataset source can be interpreted in multiple ways")
            entity = from_numpy(images, source=source, targets=labels, name=name, digest=digest)._to_mlflow_entity()
        fields = {k: getattr(entity, k) for k in ("name", "digest", "source_type", "source", "schema", "profile")}
        inputs.append(fields | {"context": context})
    return inputs


def died_twin(client: MlflowClient, experiment_id: str, digest: str) -> Run | None:
    """The newest run outside a sweep with this config whose process died (see ``liveness``), to continue."""
    runs = client.search_runs(
        [experiment_id],
        f"tags.`{names.CONFIG_HASH_TAG}` = '{digest}' and attributes.status = 'KILLED' "
        f"and tags.`{names.STOP_REASON_TAG}` LIKE '{names.PROCESS_DIED} (%'",
        order_by=["attributes.start_time DESC"],
    )
    alone = [run for run in runs if names.PARENT_RUN_TAG not in run.data.tags]
    return alone[0] if alone else None


def not_resumable(client: MlflowClient, run_id: str) -> None:
    """Mark a run whose process died before it logged its config, so no later start tries to continue it."""
    client.set_tag(run_id, names.STOP_REASON_TAG, f"{names.PROCESS_DIED} before it logged its config; not resumable")


def sweep_sibling(client: MlflowClient, parent: str, digest: str) -> Run | None:
    """The sweep's earlier job with this config: a FINISHED one first, else the newest KILLED one."""
    runs = sweep_runs(client, parent, names.CONFIG_HASH_TAG, digest)
    for status in ("FINISHED", "KILLED"):
        if found := [run for run in runs if run.info.status == status]:
            return found[0]
    return None
