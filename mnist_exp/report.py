"""Sweep summaries built from what MLflow holds, and ``mnist-exp-report`` to rebuild them.

A summary is a table with one row per job (its swept values, objective, test
accuracy, time, status), written as CSV and Markdown, and a comparison figure:
every job's validation accuracy per epoch, and the objective against each swept
parameter.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.figure import Figure
from mlflow import MlflowClient
from mlflow.entities import Param, Run
from omegaconf import DictConfig

from mnist_exp import plots
from mnist_exp.display import short
from mnist_exp.sweep import ERROR_TAG, JOB_TAG, SWEEP_RECORD

CURVE_METRIC = "val_accuracy"
IGNORED_PREFIXES = ("tracking.", "model.num_params")  # differ between jobs without being swept


@dataclass
class Summary:
    """A sweep's jobs in job order, the swept params, and the best finished job."""

    parent_run_id: str
    metric: str
    rows: list[dict[str, str | float | None]] = field(default_factory=list)
    swept: list[str] = field(default_factory=list)
    best: Run | None = None
    params: dict[str, dict[str, str]] = field(default_factory=dict)  # run id -> params

    @property
    def finished(self) -> int:
        return sum(row["status"] == "FINISHED" for row in self.rows)

    @property
    def failed(self) -> int:
        return sum(row["status"] == "FAILED" for row in self.rows)


def children(client: MlflowClient, parent_run_id: str) -> list[Run]:
    """The sweep's job runs, in job order."""
    experiment_id = client.get_run(parent_run_id).info.experiment_id
    runs = client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{parent_run_id}'", max_results=10_000)
    return sorted(runs, key=lambda r: (int(r.data.tags.get(JOB_TAG, "0")), r.info.start_time))


def swept_params(runs: list[Run]) -> list[str]:
    """The params whose values differ between the jobs that recorded them."""
    keys = sorted({key for run in runs for key in run.data.params})
    return [
        key
        for key in keys
        if not key.startswith(IGNORED_PREFIXES)
        and len({run.data.params[key] for run in runs if key in run.data.params}) > 1
    ]


def summarize(client: MlflowClient, parent_run_id: str, objective: DictConfig | dict) -> Summary:
    """One row per job and the best finished job by the objective."""
    runs = children(client, parent_run_id)
    summary = Summary(parent_run_id, objective["metric"], swept=swept_params(runs))
    sign = 1 if objective["direction"] == "maximize" else -1
    scored = [r for r in runs if r.info.status == "FINISHED" and objective["metric"] in r.data.metrics]
    if scored:
        summary.best = max(scored, key=lambda r: sign * r.data.metrics[objective["metric"]])
    for run in runs:
        summary.params[run.info.run_id] = run.data.params
        values = [f"{key}={short(run.data.params[key])}" for key in summary.swept if key in run.data.params]
        summary.rows.append(
            {
                "job": run.data.tags.get(JOB_TAG, ""),
                "run_id": run.info.run_id,
                "overrides": " ".join(values) or run.data.tags.get("hydra.overrides", ""),
                summary.metric: run.data.metrics.get(summary.metric),
                "test_accuracy": run.data.metrics.get("test_accuracy"),
                "train_time_s": run.data.metrics.get("train_time_s"),
                "status": run.info.status,
                "error": run.data.tags.get(ERROR_TAG, ""),
            }
        )
    return summary


def format_cell(value: str | float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def to_markdown(summary: Summary) -> str:
    """The table as Markdown, the best job marked."""
    columns = [c for c in summary.rows[0] if c not in ("run_id", "error")] if summary.rows else []
    best_id = summary.best.info.run_id if summary.best else None
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in summary.rows:
        cells = [format_cell(row[c]) for c in columns]
        if row["run_id"] == best_id:
            cells[0] += " (best)"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(summary: Summary, path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(summary.rows[0]) if summary.rows else ["job"])
        writer.writeheader()
        writer.writerows(summary.rows)


def comparison_figure(client: MlflowClient, summary: Summary) -> Figure:
    """Validation accuracy per epoch for every job, and the objective against each swept param."""
    curves = {}
    for row in summary.rows:
        history = sorted(client.get_metric_history(row["run_id"], CURVE_METRIC), key=lambda m: m.step)
        if history:
            curves[row["overrides"] or row["run_id"]] = ([m.step for m in history], [m.value for m in history])
    scored = [row for row in summary.rows if row[summary.metric] is not None]
    scatters = {
        key: ([summary.params[row["run_id"]].get(key) for row in scored], [row[summary.metric] for row in scored])
        for key in summary.swept
    }
    scores = {row["overrides"] or row["run_id"]: row[summary.metric] for row in scored}
    return plots.sweep_comparison(curves, CURVE_METRIC, scatters, summary.metric, scores)


def publish(client: MlflowClient, parent_run_id: str, out_dir: Path, objective: DictConfig | dict) -> Summary:
    """Write the summary into ``out_dir``, attach it to the parent run with the best job's values, print it."""
    summary = summarize(client, parent_run_id, objective)
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = to_markdown(summary)
    (out_dir / "summary.md").write_text(markdown)
    write_csv(summary, out_dir / "summary.csv")
    figure = comparison_figure(client, summary)
    figure.savefig(out_dir / "comparison.png", dpi=100)
    for name in ("summary.md", "summary.csv", "comparison.png"):
        client.log_artifact(parent_run_id, str(out_dir / name), "summary")
    metrics = {"jobs_finished": summary.finished, "jobs_failed": summary.failed}
    if summary.best is not None:
        best = summary.best
        params = [Param(k, v) for k, v in best.data.params.items()]
        client.log_batch(parent_run_id, params=params)
        metrics[summary.metric] = best.data.metrics[summary.metric]
        if "test_accuracy" in best.data.metrics:
            metrics["test_accuracy"] = best.data.metrics["test_accuracy"]
        client.set_tag(parent_run_id, "best_run_id", best.info.run_id)
        client.set_tag(parent_run_id, "best_run_name", best.info.run_name)
    for name, value in metrics.items():
        client.log_metric(parent_run_id, name, value)
    print(markdown)
    print(f"{summary.finished} finished, {summary.failed} failed; summary in {out_dir}")
    if summary.best is not None:
        print(
            f"best: {summary.best.info.run_name} ({summary.best.info.run_id}) "
            f"{summary.metric}={summary.best.data.metrics[summary.metric]:.4f}"
        )
    return summary


def main(argv: list[str] | None = None) -> int:
    """``mnist-exp-report <parent run id | sweep folder>``: rebuild a sweep's summary from MLflow."""
    parser = argparse.ArgumentParser(prog="mnist-exp-report", description=main.__doc__)
    parser.add_argument("sweep", help="the sweep's parent run id, or its folder (multirun/...)")
    parser.add_argument("--tracking-uri", help="the MLflow store (default: the sweep's, or the project's)")
    parser.add_argument("--out", type=Path, help="where to write the summary (default: the sweep folder)")
    args = parser.parse_args(argv)

    from mnist_exp.config import compose

    cfg = compose()
    folder = Path(args.sweep)
    if folder.is_dir():
        record_path = folder / SWEEP_RECORD
        if not record_path.is_file():
            parser.error(f"{folder} has no {SWEEP_RECORD}: not a sweep folder of mnist-exp")
        record = json.loads(record_path.read_text())
        parent, uri = record["parent_run_id"], args.tracking_uri or record["tracking_uri"]
    else:
        parent, uri = args.sweep, args.tracking_uri or cfg.tracking.uri
    client = MlflowClient(uri)
    try:
        run = client.get_run(parent)
    except Exception as exc:  # MLflow raises its own types for a missing run
        parser.error(f"no run {parent} in {uri}: {exc}")
    out = args.out or Path(run.data.tags.get("sweep.dir", "."))
    publish(client, parent, out, cfg.objective)
    return 0


if __name__ == "__main__":
    sys.exit(main())
