"""Sweep summaries built from what MLflow holds.

A summary is a table with one row per job (its swept values, objective, test
accuracy, time, status), written as CSV and Markdown, and a comparison figure:
every job's validation accuracy per epoch, and the objective against each swept
parameter.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.figure import Figure
from mlflow import MlflowClient
from mlflow.entities import Param, Run
from omegaconf import DictConfig

from mnist_exp import plots
from mnist_exp.display import short
from mnist_exp.errors import UserError
from mnist_exp.tracking import names
from mnist_exp.tracking.names import ERROR_TAG, SWEEP_JOB_TAG
from mnist_exp.tracking.store import existing_run

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)
CURVE_METRIC = names.VAL_ACCURACY
IGNORED_PREFIXES = ("tracking.", names.NUM_PARAMS_PARAM)  # differ between jobs without being swept


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
    runs = client.search_runs([experiment_id], f"tags.`{names.PARENT_RUN_TAG}` = '{parent_run_id}'", max_results=10_000)
    return sorted(runs, key=lambda r: (int(r.data.tags.get(SWEEP_JOB_TAG, "0")), r.info.start_time))


def swept_params(runs: list[Run]) -> list[str]:
    """The params whose values differ between the jobs that recorded them."""
    keys = sorted({key for run in runs for key in run.data.params})
    return [
        key
        for key in keys
        if not key.startswith(IGNORED_PREFIXES)
        and len({run.data.params[key] for run in runs if key in run.data.params}) > 1
    ]


def swept_overrides(run: Run, keys: set[str]) -> str:
    """The run's command-line overrides of ``keys`` (all of them when none matches): a job's label."""
    overrides = run.data.tags.get(names.OVERRIDES_TAG, "")
    mine = [token for token in overrides.split() if token.split("=", 1)[0].lstrip("+~") in keys]
    return " ".join(mine) or overrides


def command_line_sweeps(parent: Run) -> set[str]:
    """The keys the sweep's command line sweeps over (``key=a,b``, ``key=range(1,4)``), as Hydra parses them."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser, keys = OverridesParser.create(), set()
    for token in parent.data.tags.get(names.SWEEP_OVERRIDES_TAG, "").split():
        try:
            (override,) = parser.parse_overrides([token])
        except Exception:  # a value with spaces, split apart in the tag: not a label's concern
            continue
        if override.is_sweep_override():
            keys.add(override.key_or_group)
    return keys


def summarize(client: MlflowClient, parent_run_id: str, objective: DictConfig | dict) -> Summary:
    """One row per job and the best finished job by the objective."""
    runs = children(client, parent_run_id)
    summary = Summary(parent_run_id, objective["metric"], swept=swept_params(runs))
    # Fewer than two jobs recorded (a sweep stopped early): the command line says what varies.
    label_keys = set() if summary.swept else command_line_sweeps(client.get_run(parent_run_id))
    sign = 1 if objective["direction"] == "maximize" else -1
    scored = [r for r in runs if r.info.status == "FINISHED" and objective["metric"] in r.data.metrics]
    complete = [r for r in scored if names.PRUNED_TAG not in r.data.tags]  # a pruned job trained fewer epochs
    if complete:
        summary.best = max(complete, key=lambda r: sign * r.data.metrics[objective["metric"]])
    ranked = sorted(complete, key=lambda r: -sign * r.data.metrics[objective["metric"]])
    rank = {run.info.run_id: str(place) for place, run in enumerate(ranked, start=1)}
    for run in runs:
        summary.params[run.info.run_id] = run.data.params
        values = [f"{key}={short(run.data.params[key])}" for key in summary.swept if key in run.data.params]
        summary.rows.append(
            {
                "job": run.data.tags.get(SWEEP_JOB_TAG, ""),
                "rank": rank.get(run.info.run_id, "-"),
                "run_id": run.info.run_id,
                "overrides": " ".join(values) or swept_overrides(run, label_keys),
                summary.metric: run.data.metrics.get(summary.metric),
                names.TEST_ACCURACY: run.data.metrics.get(names.TEST_ACCURACY),
                names.RUN_TRAIN_TIME: run.data.metrics.get(names.RUN_TRAIN_TIME),
                "status": run.info.status,
                "note": pruned_note(run),
                "error": run.data.tags.get(ERROR_TAG, ""),
            }
        )
    return summary


def pruned_note(run: Run) -> str:
    """``pruned at epoch N`` for a job its pruner stopped, else empty."""
    if run.data.tags.get(names.PRUNED_TAG) != "true":
        return ""
    return f"pruned at epoch {run.data.tags.get(names.PRUNED_EPOCH_TAG, '?')}"


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


def extra_figures(client: MlflowClient, summary: Summary) -> dict[str, Figure]:
    """An Optuna sweep's figures as ``optuna.visualization.matplotlib`` draws them (history, parallel
    coordinates, importances, slice); a grid sweep's parallel coordinates of its MLflow runs."""
    study = sweep_study(client.get_run(summary.parent_run_id).data.tags.get(names.STUDY_TAG))
    if study is not None:
        return optuna_figures(study)
    scored = [row for row in summary.rows if row[summary.metric] is not None and row["status"] == "FINISHED"]
    if len(scored) < 2 or not summary.swept:
        return {}
    params = {key: [summary.params[row["run_id"]].get(key) for row in scored] for key in summary.swept}
    scores = [float(row[summary.metric]) for row in scored]
    return {names.PARALLEL_COORDINATES_FILE: plots.parallel_coordinates(params, scores, summary.metric)}


def sweep_study(study_tag: str | None) -> optuna.Study | None:
    """The Optuna study a parent's tag names, if it has two complete trials to draw; None otherwise."""
    if not study_tag:
        return None
    import optuna

    name, _, storage = study_tag.partition(" in ")
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except Exception as exc:  # a summary goes on without these figures
        log.warning("no study figures for %s: %s", name, exc)
        return None
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return study if len(complete) >= 2 else None


def optuna_figures(study: optuna.Study) -> dict[str, Figure]:
    """Optuna's own figures of a study, each that it can draw."""
    import matplotlib
    import optuna

    matplotlib.use("Agg")  # Optuna draws with pyplot: no window, whatever display the user has
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as drawn

    kinds = {
        names.OPTIMIZATION_HISTORY_FILE: drawn.plot_optimization_history,
        names.PARALLEL_COORDINATES_FILE: drawn.plot_parallel_coordinate,
        names.IMPORTANCES_FILE: drawn.plot_param_importances,
        names.SLICE_FILE: drawn.plot_slice,
    }
    figures: dict[str, Figure] = {}
    for file, plot in kinds.items():
        with warnings.catch_warnings():  # Optuna marks its matplotlib backend experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            try:
                axes = plot(study)
            except Exception as exc:  # one figure fewer, the summary goes on
                log.warning("no %s for study %s: %s", file, study.study_name, exc)
                continue
        figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
        plt.close(figure)  # out of pyplot's registry, so it is freed with the summary
        figures[file] = figure
    return figures


def publish(
    client: MlflowClient, parent_run_id: str, out_dir: Path, objective: DictConfig | dict, attach: bool = True
) -> Summary:
    """Write the summary into ``out_dir``, print it; with ``attach``, log it and the best job's values on the parent."""
    summary = summarize(client, parent_run_id, objective)
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = to_markdown(summary)
    (out_dir / names.SUMMARY_FILES[0]).write_text(markdown)
    write_csv(summary, out_dir / names.SUMMARY_FILES[1])
    figure = comparison_figure(client, summary)
    figure.savefig(out_dir / names.SUMMARY_FILES[2], dpi=100)
    files = [out_dir / name for name in names.SUMMARY_FILES]
    for name, extra in extra_figures(client, summary).items():
        extra.savefig(out_dir / name, dpi=100)
        files.append(out_dir / name)
    if attach:
        attach_summary(client, parent_run_id, summary, files)
    print(markdown)
    print(f"{summary.finished} finished, {summary.failed} failed; summary in {out_dir}")
    if summary.best is not None:
        print(
            f"best: {summary.best.info.run_name} ({summary.best.info.run_id}) "
            f"{summary.metric}={summary.best.data.metrics[summary.metric]:.4f}"
        )
    return summary


def attach_summary(client: MlflowClient, parent_run_id: str, summary: Summary, files: list[Path]) -> None:
    """The summary's files, the jobs' counts and the best job's params and metrics, onto the parent run."""
    for path in files:
        client.log_artifact(parent_run_id, str(path), names.SUMMARY_DIR)
    metrics = {names.JOBS_FINISHED: summary.finished, names.JOBS_FAILED: summary.failed}
    if summary.best is not None:
        best = summary.best
        logged = client.get_run(parent_run_id).data.params  # a resumed sweep's: params cannot change
        params = [Param(k, v) for k, v in best.data.params.items() if k not in logged]
        client.log_batch(parent_run_id, params=params)
        metrics[summary.metric] = best.data.metrics[summary.metric]
        if names.TEST_ACCURACY in best.data.metrics:
            metrics[names.TEST_ACCURACY] = best.data.metrics[names.TEST_ACCURACY]
        client.set_tag(parent_run_id, names.BEST_RUN_ID_TAG, best.info.run_id)
        client.set_tag(parent_run_id, names.BEST_RUN_NAME_TAG, best.info.run_name)
    for name, value in metrics.items():
        client.log_metric(parent_run_id, name, value)


def sweep_parent(reference: str) -> tuple[str, str | None]:
    """A sweep's parent run id and its store, from the parent run id or the sweep's folder (store: None)."""
    folder = Path(reference)
    if not folder.is_dir():
        return reference, None
    record_path = folder / names.SWEEP_RECORD
    if not record_path.is_file():
        raise UserError(
            f"{folder} has no {names.SWEEP_RECORD}: not a sweep folder of mnist-exp. "
            "Fix: pass multirun/<date>/<time> or the parent run id"
        )
    record = json.loads(record_path.read_text())
    return record["parent_run_id"], record["tracking_uri"]


def parent_run(client: MlflowClient, run_id: str) -> Run:
    """The sweep's parent run ``run_id``; a UserError for a run that does not exist or is not a sweep's parent."""
    run = existing_run(client, run_id)
    if run.data.tags.get(names.SWEEP_ROLE_TAG) != names.SWEEP_PARENT_ROLE:
        raise UserError(
            f"run {run_id} ({run.info.run_name}) is not a sweep's parent run: mnist-exp-report summarises sweeps. "
            "Fix: pass a sweep's parent run id or folder, or two or more runs to compare them"
        )
    return run


def summary_folder(parent: Run) -> Path:
    """Where a sweep's summary goes: the sweep's folder as its parent run recorded it."""
    return Path(parent.data.tags.get(names.SWEEP_DIR_TAG, "."))


@dataclass
class Side:
    """One side of a comparison: a sweep's finished jobs, or a single run."""

    label: str
    runs: list[Run]
    swept: list[str]
    best: Run | None


def side(client: MlflowClient, reference: str, objective: DictConfig | dict) -> Side:
    """A sweep (its parent run id or folder) or a single run, with its best finished run by the objective."""
    run_id, _ = sweep_parent(reference)
    run = existing_run(client, run_id)
    if run.data.tags.get(names.SWEEP_ROLE_TAG) == names.SWEEP_PARENT_ROLE:
        jobs = children(client, run_id)
        runs, swept = [r for r in jobs if r.info.status == "FINISHED"], swept_params(jobs)
    else:
        runs, swept = ([run] if run.info.status == "FINISHED" else []), []
    complete = [r for r in runs if objective["metric"] in r.data.metrics and names.PRUNED_TAG not in r.data.tags]
    sign = 1 if objective["direction"] == "maximize" else -1
    best = max(complete, key=lambda r: sign * r.data.metrics[objective["metric"]]) if complete else None
    return Side(run.info.run_name or run_id, complete, swept, best)


def comparison_table(sides: list[Side], metric: str) -> str:
    """Markdown: each side's objective distribution, then the best configuration of each."""
    lines = [f"| | jobs | best {metric} | median | worst | best run |", "|---|---|---|---|---|---|"]
    for s in sides:
        values = sorted(r.data.metrics[metric] for r in s.runs)
        cells = [f"{v:.4f}" for v in (values[-1], values[len(values) // 2], values[0])] if values else ["-"] * 3
        if values and s.best is not None and s.best.data.metrics[metric] == values[0]:
            cells = [cells[2], cells[1], cells[0]]  # minimised: the best is the lowest
        best = s.best.info.run_name if s.best else "-"
        lines.append(f"| {s.label} | {len(values)} | {' | '.join(cells)} | {best} |")
    bests = [s.best for s in sides if s.best is not None]
    keys = sorted(
        {k for s in sides for k in s.swept}
        | {k for b in bests for k in b.data.params if len({x.data.params.get(k) for x in bests}) > 1}
    )
    keys = [k for k in keys if not k.startswith(IGNORED_PREFIXES)]
    lines += ["", "| best configuration | " + " | ".join(s.label for s in sides) + " |", "|---|" + "---|" * len(sides)]
    for key in keys:
        cells = [short(s.best.data.params.get(key, "-")) if s.best else "-" for s in sides]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def compare(client: MlflowClient, references: list[str], objective: DictConfig | dict, out_dir: Path) -> str:
    """Compare sweeps (or runs): ``comparison.md`` and the best jobs' curves in ``comparison_best.png``."""
    sides = [side(client, reference, objective) for reference in references]
    table = comparison_table(sides, objective["metric"])
    curves = {}
    for s in sides:
        if s.best is not None:
            history = sorted(client.get_metric_history(s.best.info.run_id, CURVE_METRIC), key=lambda m: m.step)
            curves[f"{s.label}: {s.best.info.run_name}"] = ([m.step for m in history], [m.value for m in history])
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / names.COMPARISON_FILES[0]).write_text(table)
    plots.best_curves(curves, CURVE_METRIC).savefig(out_dir / names.COMPARISON_FILES[1], dpi=100)
    return table
