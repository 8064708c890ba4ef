"""Figures read at a glance: whole epochs, legends beside the curves, log axes for wide ranges, a title."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from mnist_exp.display import short
from mnist_exp.plots import sweep_comparison


def sweep(jobs: int, epochs: int):
    labels = [f"optimizer.learning_rate={short(2e-4 * 1.5**i)}" for i in range(jobs)]
    curves = {label: (list(range(1, epochs + 1)), [0.9 + 0.001 * i] * epochs) for i, label in enumerate(labels)}
    scores = {label: 0.9 + 0.001 * i for i, label in enumerate(labels)}
    lrs = [2e-4 * 1.5**i for i in range(jobs)]
    figure = sweep_comparison(
        curves, "val_accuracy", {"optimizer.learning_rate": (lrs, list(scores.values()))}, "acc", scores
    )
    figure.canvas.draw()
    return figure


def test_a_small_sweep_has_its_legend_beside_the_curves_and_whole_epochs() -> None:
    figure = sweep(jobs=9, epochs=1)
    curves, by_lr = figure.axes[:2]
    assert figure.get_suptitle() == "Sweep over optimizer.learning_rate: acc"
    legend = curves.get_legend()
    assert legend is not None and len(legend.get_texts()) == 9
    renderer = figure.canvas.get_renderer()
    assert legend.get_window_extent(renderer).x0 >= curves.get_window_extent(renderer).x1  # not on the curves
    assert [tick for tick in curves.get_xticks()] == [1]
    assert curves.get_xlim() == pytest.approx((0.5, 1.5))
    assert curves.lines[0].get_marker() == "o" and curves.lines[0].get_linestyle() == "-"
    assert by_lr.get_xscale() == "log"  # 2e-4 to 5e-3: more than a decade
    plt.close(figure)


def test_a_large_sweep_is_coloured_by_the_objective_and_a_narrow_range_stays_linear() -> None:
    figure = sweep(jobs=20, epochs=5)
    curves = figure.axes[0]
    assert curves.get_legend() is None
    assert any(axis.get_label() == "<colorbar>" for axis in figure.axes)
    assert list(curves.get_xticks()) == [1, 2, 3, 4, 5]
    plt.close(figure)
    narrow = sweep_comparison(
        {}, "val_accuracy", {"optimizer.learning_rate": ([1e-3, 2e-3, 5e-3], [0.9, 0.91, 0.92])}, "acc"
    )
    assert narrow.axes[1].get_xscale() == "linear"
    plt.close(narrow)
