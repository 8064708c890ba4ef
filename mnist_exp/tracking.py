"""MLflow plumbing: the store, the experiment, and what every run records about itself."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import mlflow
from omegaconf import DictConfig, ListConfig, OmegaConf

from mnist_exp.config import PROJECT_ROOT

SQLITE_PREFIX = "sqlite:///"


class TrackingError(Exception):
    """The tracking store cannot be reached or written; the message names its URI."""


def check_store(uri: str, timeout: float = 5.0) -> None:
    """Fail fast, with the URI, when a server does not answer or a local store cannot be written."""
    if uri.startswith(("http://", "https://")):
        import requests

        try:
            requests.get(f"{uri.rstrip('/')}/health", timeout=timeout).raise_for_status()
        except requests.RequestException as exc:
            raise TrackingError(
                f"tracking store {uri} cannot be reached ({type(exc).__name__}); start the server, "
                "or point tracking.uri / MLFLOW_TRACKING_URI at one that runs"
            ) from exc
    elif uri.startswith(SQLITE_PREFIX):
        database = Path(uri.removeprefix(SQLITE_PREFIX).split("?")[0])
        try:
            database.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TrackingError(f"tracking store {uri} cannot be created: {exc}") from exc
        writable = os.access(database.parent, os.W_OK) and (not database.exists() or os.access(database, os.W_OK))
        if not writable:
            raise TrackingError(f"tracking store {uri} is not writable; fix the permissions or set tracking.store_dir")


def connect(tracking_cfg: DictConfig) -> str:
    """Point MLflow at the configured store and return the experiment's id, creating both if needed.

    A local SQLite store gets its folder created and new experiments keep their
    artifacts at ``artifact_location``; a server decides for itself.
    """
    uri = tracking_cfg.uri
    check_store(uri)
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.get_experiment_by_name(tracking_cfg.experiment_name)
        if experiment is not None:
            return experiment.experiment_id
        local = uri.startswith(SQLITE_PREFIX)
        location = Path(tracking_cfg.artifact_location).resolve().as_uri() if local else None
        # Tell the MLflow UI these are model-training runs, so it opens on the runs table.
        tags = {"mlflow.experimentKind": "custom_model_development"}
        return mlflow.create_experiment(tracking_cfg.experiment_name, artifact_location=location, tags=tags)
    except (mlflow.exceptions.MlflowException, OSError) as exc:
        raise TrackingError(f"tracking store {uri} cannot be used: {exc}") from exc


def flatten(node: Any, prefix: str = "") -> dict[str, str]:
    """Every leaf of a resolved config as ``{"dotted.name": "value"}``.

    Lists of plain values stay one value (``[28, 28, 1]``); lists of nodes are indexed.
    """
    if isinstance(node, DictConfig | dict):
        items = node.items()
    elif isinstance(node, ListConfig | list) and any(isinstance(v, DictConfig | dict) for v in node):
        items = enumerate(node)
    else:
        value = OmegaConf.to_container(node) if isinstance(node, ListConfig) else node
        return {prefix: str(value)}
    flat: dict[str, str] = {}
    for key, value in items:
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


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


def git_state(root: Path = PROJECT_ROOT) -> tuple[str, bool]:
    """The checked-out commit and whether the work tree has uncommitted changes."""

    def git(*args: str) -> str:
        result = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)
        return result.stdout.strip() if result.returncode == 0 else ""

    commit = git("rev-parse", "HEAD") or "unknown"
    return commit, bool(git("status", "--porcelain", "--untracked-files=no"))


def run_tags(overrides: list[str], dataset_name: str, dataset_digest: str, seed: int) -> dict[str, str]:
    """Tags that say exactly what produced a run."""
    commit, dirty = git_state()
    tags = {
        "hydra.overrides": " ".join(overrides),
        "git.commit": commit,
        "git.dirty": str(dirty).lower(),
        "mlflow.source.git.commit": commit,
        "dataset.name": dataset_name,
        "dataset.digest": dataset_digest,
        "seed": str(seed),
    }
    tags.update({f"version.{name}": version for name, version in versions().items()})
    return tags


# Keys that say where or how a run is recorded, not what it computes.
NOT_IN_CONFIG_HASH = (
    "tracking",
    "resume",
    "training.skip_if_done",
    "training.verbose",
    "training.threads",
    "training.batch_shards",
    "dataset.cache_dir",
    "dataset.sources",
)


def config_hash(cfg: DictConfig) -> str:
    """A digest of everything in the config that changes what a run computes."""
    import hashlib
    import json

    flat = flatten(OmegaConf.to_container(cfg, resolve=True))
    kept = {k: v for k, v in flat.items() if not any(k == p or k.startswith(f"{p}.") for p in NOT_IN_CONFIG_HASH)}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()
