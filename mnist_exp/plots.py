"""Figures: a run's learning curves and confusion matrix, a sweep's comparison and a grid's parallel coordinates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.cm
import matplotlib.colors
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def new_figure(width: float, height: float, rows: int = 1, columns: int = 1, **grid: Any) -> tuple[Figure, Any]:
    """A figure and its axes, kept by no registry (unlike pyplot's): freed once unused, however many a process
    draws (a sweep's jobs in one process, a long search)."""
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)  # drawn to pixels, as savefig does
    return figure, figure.subplots(rows, columns, **grid)


def learning_curves(history: Mapping[str, Sequence[float]]) -> Figure:
    """Accuracy and loss per epoch, training against validation."""
    fig, axes = new_figure(10, 4, 1, 2)
    for ax, metric in zip(axes, ("accuracy", "loss"), strict=True):
        train = history[metric]
        epochs = range(1, len(train) + 1)
        ax.plot(epochs, train, marker="o", label="training")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], marker="o", label="validation")
        ax.set(title=metric.capitalize(), xlabel="epoch", ylabel=metric)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend()
    return fig


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]) -> Figure:
    """Counts of true class (rows) against predicted class (columns)."""
    n = len(class_names)
    counts = np.zeros((n, n), dtype=np.int64)
    np.add.at(counts, (y_true, y_pred), 1)
    fig, ax = new_figure(7, 6)
    image = ax.imshow(counts, cmap="Blues")
    fig.colorbar(image, ax=ax)
    ax.set(xticks=range(n), yticks=range(n), xlabel="predicted", ylabel="true", title="Test confusion matrix")
    ax.set_xticklabels(class_names, rotation=45, ha="right")
    ax.set_yticklabels(class_names)
    threshold = counts.max() / 2
    for (i, j), count in np.ndenumerate(counts):
        ax.text(j, i, count, ha="center", va="center", fontsize=7, color="white" if count > threshold else "black")
    return fig


LEGEND_MAX = 12  # more jobs than this: curves coloured by the objective, with a colour bar


def log_axis(values: Sequence[float]) -> bool:
    """Whether positive values spanning more than a decade read better on a log axis (none: no)."""
    return bool(values) and min(values) > 0 and max(values) / min(values) > 10


def numbers(values: Sequence) -> list[float] | None:
    """The values as floats, or None when any is not a number (then they are categories)."""
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        return None


def sweep_comparison(
    curves: Mapping[str, tuple[Sequence[int], Sequence[float]]],
    curve_metric: str,
    scatters: Mapping[str, tuple[Sequence, Sequence[float]]],
    metric: str,
    scores: Mapping[str, float] | None = None,
) -> Figure:
    """Every job's ``curve_metric`` per epoch, then ``metric`` against each swept param.

    Up to 12 jobs get a legend beside the curves; more are coloured by their
    ``scores`` (the objective) with a colour bar. Epochs are whole numbers; a
    param spanning more than a decade gets a log axis.
    """
    panels = 1 + len(scatters)
    fig, axes = new_figure(5 * panels + 4, 4.5, 1, panels, squeeze=False, width_ratios=[2] + [1] * (panels - 1))
    fig.suptitle(f"Sweep over {', '.join(scatters) or 'no varying parameter'}: {metric}")
    ax = axes[0][0]
    by_score = len(curves) > LEGEND_MAX and scores
    if by_score:
        norm = matplotlib.colors.Normalize(min(scores.values()), max(scores.values()))
        colours = matplotlib.colormaps["viridis"]
    for label, (steps, values) in curves.items():
        colour = colours(norm(scores[label])) if by_score and label in scores else None
        ax.plot(steps, values, marker="o", markersize=4, label=label, color=colour, alpha=0.85)
    last = max((max(steps) for steps, _ in curves.values() if len(steps)), default=1)
    ax.set(title=f"{curve_metric} per epoch", xlabel="epoch", ylabel=curve_metric, xlim=(0.5, last + 0.5))
    ax.set_xticks(range(1, last + 1) if last <= 12 else np.linspace(1, last, 6, dtype=int))
    ax.grid(alpha=0.3)
    if by_score:
        fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=colours), ax=ax, label=metric)
    elif curves:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    for ax, (param, (xs, ys)) in zip(axes[0][1:], scatters.items(), strict=True):
        values = numbers(xs)
        if values is None:
            categories = sorted({str(x) for x in xs})
            ax.scatter([categories.index(str(x)) for x in xs], ys)
            ax.set_xticks(range(len(categories)), categories)
        else:
            ax.scatter(values, ys)
            if log_axis(values):
                ax.set_xscale("log")
        ax.set(title=f"{metric} by {param}", xlabel=param, ylabel=metric)
        ax.grid(alpha=0.3)
    return fig


def parallel_coordinates(params: Mapping[str, Sequence], scores: Sequence[float], metric: str) -> Figure:
    """One line per job across an axis per swept param and the objective, coloured by the objective.

    Numbers are placed by value (log-spaced past a decade), categories evenly; each axis is
    labelled with its own values.
    """
    axes_names = [*params, metric]
    fig, ax = new_figure(2.2 * len(axes_names) + 3, 5)
    columns: list[np.ndarray] = []
    for name in axes_names:
        values = list(params[name]) if name in params else list(scores)
        as_numbers = numbers(values)
        if as_numbers is None:
            categories = sorted({str(v) for v in values})
            position = np.array([categories.index(str(v)) for v in values], float)
            ticks = [(i, c) for i, c in enumerate(categories)]
        else:
            scaled = np.log10(as_numbers) if log_axis(as_numbers) else np.asarray(as_numbers)
            position = scaled
            ticks = [(s, short_number(v)) for s, v in sorted(zip(scaled, as_numbers, strict=True))]
        low, high = float(np.min(position)), float(np.max(position))
        span = high - low or 1.0
        columns.append((position - low) / span)
        for place, label in ticks if len(ticks) <= 8 else ticks[:: max(1, len(ticks) // 6)]:
            ax.text(len(columns) - 1 + 0.03, (place - low) / span, label, fontsize=7, va="center")
    norm = matplotlib.colors.Normalize(min(scores), max(scores))
    colours = matplotlib.colormaps["viridis"]
    lines = np.stack(columns, axis=1)
    for row, score in sorted(zip(lines, scores, strict=True), key=lambda pair: pair[1]):
        ax.plot(range(len(axes_names)), row, color=colours(norm(score)), alpha=0.8, linewidth=1.5)
    for x in range(len(axes_names)):
        ax.axvline(x, color="0.3", linewidth=0.8)
    ax.set_xticks(range(len(axes_names)), axes_names)
    ax.set_yticks([])
    ax.set(xlim=(-0.1, len(axes_names) - 0.6), title=f"Swept parameters against {metric} ({len(scores)} jobs)")
    fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=colours), ax=ax, label=metric)
    return fig


def short_number(value: float) -> str:
    return f"{value:.3g}"


def best_curves(curves: Mapping[str, tuple[Sequence[int], Sequence[float]]], curve_metric: str) -> Figure:
    """The curve of each compared sweep's best job, in one figure."""
    fig, ax = new_figure(8, 4.5)
    for label, (steps, values) in curves.items():
        ax.plot(steps, values, marker="o", label=label)
    ax.set(title=f"Best job of each: {curve_metric} per epoch", xlabel="epoch", ylabel=curve_metric)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig
