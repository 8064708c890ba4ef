"""``mnist-exp-reproduce <run id>``: run a recorded experiment again and compare the results."""

from __future__ import annotations

import argparse
import logging
import sys

from mlflow import MlflowClient
from mlflow.entities import Run

from mnist_exp.cli import client_for, tracking_uri

EPOCH_METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
FINAL_METRICS = ("test_loss", "test_accuracy")
log = logging.getLogger("mnist_exp.reproduce")


def metric_rows(client: MlflowClient, original: Run, new: Run) -> list[tuple[str, float | None, float | None]]:
    """(name, original value, new value) for every per-epoch and final metric."""
    rows = []
    for name in EPOCH_METRICS:
        before = {m.step: m.value for m in client.get_metric_history(original.info.run_id, name)}
        after = {m.step: m.value for m in client.get_metric_history(new.info.run_id, name)}
        rows += [(f"{name}[{step}]", before.get(step), after.get(step)) for step in sorted(before | after)]
    rows += [(name, original.data.metrics.get(name), new.data.metrics.get(name)) for name in FINAL_METRICS]
    return rows


def side_by_side(rows: list[tuple[str, float | None, float | None]]) -> str:
    width = max(len(name) for name, _, _ in rows)
    lines = [f"{'metric':<{width}}  {'original':>12}  {'reproduced':>12}  same"]
    for name, before, after in rows:
        cells = [f"{v:12.6f}" if v is not None else f"{'-':>12}" for v in (before, after)]
        lines.append(f"{name:<{width}}  {cells[0]}  {cells[1]}  {'yes' if before == after else 'NO'}")
    same = sum(before == after for _, before, after in rows)
    lines.append(f"{same} of {len(rows)} values identical")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Rebuild a run's config from what it logged, check data and code, run it again, compare."""
    parser = argparse.ArgumentParser(prog="mnist-exp-reproduce", description=main.__doc__)
    parser.add_argument("run_id", help="the run to reproduce")
    parser.add_argument("--tracking-uri", help="the MLflow store (default: MLFLOW_TRACKING_URI or the project's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from mnist_exp.config import compose
    from mnist_exp.data import DatasetFiles
    from mnist_exp.models import run_config
    from mnist_exp.tracking import git_state
    from mnist_exp.train import train

    client = client_for(tracking_uri(args.tracking_uri))
    try:
        original = client.get_run(args.run_id)
    except Exception as exc:  # MLflow raises its own types for a missing run
        parser.error(f"no run {args.run_id} in {client.tracking_uri}: {exc}")
    cfg = run_config(client, original)
    tags = original.data.tags

    canonical = DatasetFiles.from_config(compose([f"dataset={cfg.dataset.name}"]).dataset).digest
    if tags.get("dataset.digest") not in (canonical, None):
        log.warning(
            "warning: the run used dataset digest %s; conf/dataset/%s.yaml now gives %s",
            tags["dataset.digest"],
            cfg.dataset.name,
            canonical,
        )
    commit, dirty = git_state()
    if tags.get("git.commit") != commit:
        log.warning("warning: the run was made at commit %s; this is %s", tags.get("git.commit"), commit)
    if dirty:
        log.warning("warning: the work tree has uncommitted changes")
    if cfg.training.get("deterministic") is not True:
        log.warning("warning: the run was not deterministic (training.deterministic=false): expect small differences")

    cfg.resume = None
    cfg.training.skip_if_done = False
    cfg.tracking.tags = {**cfg.tracking.tags, "reproduced_from": original.info.run_id}
    new = client.get_run(str(train(cfg)["run_id"]))
    print(f"original {original.info.run_id}  reproduced {new.info.run_id}")
    print(side_by_side(metric_rows(client, original, new)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
