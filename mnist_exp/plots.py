"""Figures logged with each run: learning curves and the test confusion matrix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def learning_curves(history: Mapping[str, Sequence[float]]) -> Figure:
    """Accuracy and loss per epoch, training against validation."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
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
    fig, ax = plt.subplots(figsize=(7, 6), layout="constrained")
    image = ax.imshow(counts, cmap="Blues")
    fig.colorbar(image, ax=ax)
    ax.set(xticks=range(n), yticks=range(n), xlabel="predicted", ylabel="true", title="Test confusion matrix")
    ax.set_xticklabels(class_names, rotation=45, ha="right")
    ax.set_yticklabels(class_names)
    threshold = counts.max() / 2
    for (i, j), count in np.ndenumerate(counts):
        ax.text(j, i, count, ha="center", va="center", fontsize=7, color="white" if count > threshold else "black")
    return fig


def sweep_comparison(
    curves: Mapping[str, tuple[Sequence[int], Sequence[float]]],
    curve_metric: str,
    scatters: Mapping[str, tuple[Sequence, Sequence[float]]],
    metric: str,
) -> Figure:
    """One panel of per-epoch curves for every job, then ``metric`` against each swept param."""
    panels = 1 + len(scatters)
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4), layout="constrained", squeeze=False)
    ax = axes[0][0]
    for label, (steps, values) in curves.items():
        ax.plot(steps, values, marker="o", label=label)
    ax.set(title=f"{curve_metric} per epoch", xlabel="epoch", ylabel=curve_metric)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    if 0 < len(curves) <= 12:
        ax.legend(fontsize=7)
    for ax, (param, (xs, ys)) in zip(axes[0][1:], scatters.items(), strict=True):
        try:
            xs = [float(x) for x in xs]
            log_scale = min(xs) > 0 and max(xs) / min(xs) >= 100
        except (TypeError, ValueError):
            log_scale = False
        ax.scatter(xs, ys)
        ax.set(title=f"{metric} by {param}", xlabel=param, ylabel=metric)
        if log_scale:
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
    return fig
