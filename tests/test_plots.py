"""Figures read at a glance: whole epochs, legends beside the curves, log axes for wide ranges, a title."""

from __future__ import annotations

import gc
import weakref

import matplotlib.pyplot as plt
import numpy as np
import optuna
import pytest

from mnist_exp.display import short
from mnist_exp.plots import confusion_matrix, learning_curves, sweep_comparison
from mnist_exp.tracking.reports import optuna_figures


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


def test_a_large_sweep_is_coloured_by_the_objective_and_a_narrow_range_stays_linear() -> None:
    figure = sweep(jobs=20, epochs=5)
    curves = figure.axes[0]
    assert curves.get_legend() is None
    assert any(axis.get_label() == "<colorbar>" for axis in figure.axes)
    assert list(curves.get_xticks()) == [1, 2, 3, 4, 5]
    narrow = sweep_comparison(
        {}, "val_accuracy", {"optimizer.learning_rate": ([1e-3, 2e-3, 5e-3], [0.9, 0.91, 0.92])}, "acc"
    )
    assert narrow.axes[1].get_xscale() == "linear"


def draw_all(tmp_path) -> list[weakref.ref]:
    """A run's figures and an Optuna study's (drawn with pyplot), each saved as a PNG; weak references to them."""
    history = {"accuracy": [0.5, 0.9], "loss": [1.0, 0.3], "val_accuracy": [0.6, 0.8], "val_loss": [0.9, 0.5]}
    labels = np.array([0, 1, 1])
    study = optuna.create_study(direction="maximize")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1) + trial.suggest_int("n", 1, 3), n_trials=4)
    drawn = [learning_curves(history), confusion_matrix(labels, labels, ["a", "b"]), *optuna_figures(study).values()]
    assert len(drawn) == 6 and plt.get_fignums() == []  # no figure left in pyplot's registry
    for i, figure in enumerate(drawn):
        figure.savefig(tmp_path / f"{i}.png")
        assert (tmp_path / f"{i}.png").read_bytes()[:4] == b"\x89PNG"
    return [weakref.ref(figure) for figure in drawn]


def test_figures_are_freed_once_saved_however_many_a_process_draws(tmp_path) -> None:
    draw_all(tmp_path)  # the first drawing's imports may keep its figures (a failed optional import's traceback)
    alive = draw_all(tmp_path)
    gc.collect()
    assert [ref() for ref in alive] == [None] * 6
