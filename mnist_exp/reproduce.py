"""Run a recorded experiment again from the config it logged, and compare the two runs' metrics."""

from __future__ import annotations

import logging

from mlflow import MlflowClient
from mlflow.entities import Run

from mnist_exp.data import load
from mnist_exp.tracking import names
from mnist_exp.tracking.registry import stored_config, with_current_recording
from mnist_exp.tracking.runs import git_state
from mnist_exp.tracking.store import existing_run

log = logging.getLogger(__name__)
Row = tuple[str, float | None, float | None]


def metric_rows(client: MlflowClient, original: Run, new: Run) -> list[Row]:
    """(name, original value, new value) for every per-epoch and final metric."""
    rows = []
    for name in names.EPOCH_METRICS:
        before = {m.step: m.value for m in client.get_metric_history(original.info.run_id, name)}
        after = {m.step: m.value for m in client.get_metric_history(new.info.run_id, name)}
        rows += [(f"{name}[{step}]", before.get(step), after.get(step)) for step in sorted(before | after)]
    rows += [(name, original.data.metrics.get(name), new.data.metrics.get(name)) for name in names.FINAL_METRICS]
    return rows


def side_by_side(rows: list[Row]) -> str:
    width = max(len(name) for name, _, _ in rows)
    lines = [f"{'metric':<{width}}  {'original':>12}  {'reproduced':>12}  same"]
    for name, before, after in rows:
        cells = [f"{v:12.6f}" if v is not None else f"{'-':>12}" for v in (before, after)]
        lines.append(f"{name:<{width}}  {cells[0]}  {cells[1]}  {'yes' if before == after else 'NO'}")
    same = sum(before == after for _, before, after in rows)
    lines.append(f"{same} of {len(rows)} values identical")
    return "\n".join(lines)


def warn_about_differences(original: Run, digest_now: str) -> None:
    """Say what may keep the new run from matching: other data, other code, no determinism."""
    tags = original.data.tags
    if tags.get(names.DATASET_DIGEST_TAG) not in (digest_now, None):
        log.warning(
            "warning: the run used dataset digest %s; its dataset config now gives %s",
            tags[names.DATASET_DIGEST_TAG],
            digest_now,
        )
    commit, dirty = git_state()
    if tags.get(names.GIT_COMMIT_TAG) != commit:
        log.warning("warning: the run was made at commit %s; this is %s", tags.get(names.GIT_COMMIT_TAG), commit)
    if dirty:
        log.warning("warning: the work tree has uncommitted changes")


def reproduce(client: MlflowClient, run_id: str) -> tuple[Run, Run]:
    """Train the run's logged config again as a new run tagged ``reproduced_from``; return both runs."""
    from mnist_exp.train import train

    original = existing_run(client, run_id)
    from mnist_exp.config import compose

    cfg = with_current_recording(stored_config(client, original), compose())
    warn_about_differences(original, load(cfg.dataset).digest)
    if cfg.training.get("deterministic") is not True:
        log.warning("warning: the run was not deterministic (training.deterministic=false): expect small differences")
    cfg.resume = None
    cfg.training.skip_if_done = False
    cfg.tracking.tags = {**cfg.tracking.tags, names.REPRODUCED_FROM_TAG: original.info.run_id}
    new = client.get_run(str(train(cfg)["run_id"]))
    return original, new
