"""Optuna searches as real multiruns: pruning, workers that never wait, resumed sweeps, comparisons."""

from __future__ import annotations

import signal
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import optuna
import pytest
from helpers import FAST, ONE_EPOCH, launch, run_module, runs_in
from mlflow import MlflowClient

from mnist_exp.tracking import names

pytestmark = pytest.mark.slow  # multiruns in subprocesses

OPTUNA = [
    "hydra/sweeper=optuna_pruning",
    "hydra.sweeper.sampler._target_=optuna.samplers.RandomSampler",
    "~hydra.sweeper.sampler.n_startup_trials",
]


def sweep_runs(store: Path) -> tuple[object, list]:
    runs = runs_in(store)
    (parent,) = [r for r in runs if r.data.tags.get(names.SWEEP_ROLE_TAG) == names.SWEEP_PARENT_ROLE]
    children = [r for r in runs if r.data.tags.get(names.PARENT_RUN_TAG) == parent.info.run_id]
    return parent, children


def epochs_trained(client: MlflowClient, run) -> int:
    return len(client.get_metric_history(run.info.run_id, "val_accuracy"))


def test_a_pruned_search_stops_bad_trials_early_and_says_so(tmp_path, store, synthetic) -> None:
    sweep_dir = tmp_path / "sweep"
    run_module(
        tmp_path, "mnist_exp.commands.train", "-m", *synthetic, *FAST, *OPTUNA,
        f"tracking.store_dir={store}", f"hydra.sweep.dir={sweep_dir}", "training.epochs=4",
        "hydra.sweeper.n_trials=8", "hydra.sweeper.sampler.seed=3",
        "hydra.sweeper.pruner.n_startup_trials=2", "hydra.sweeper.pruner.n_warmup_steps=1",
        "optimizer.learning_rate=tag(log,interval(1e-6,1e-2))",
    )  # fmt: skip
    parent, children = sweep_runs(store)
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    assert len(children) == 8 and all(c.info.status == "FINISHED" for c in children)
    pruned = [c for c in children if c.data.tags.get(names.PRUNED_TAG) == "true"]
    complete = [c for c in children if c not in pruned]
    assert pruned and complete
    for run in pruned:
        assert epochs_trained(client, run) == int(run.data.tags[names.PRUNED_EPOCH_TAG]) < 4
    assert all(epochs_trained(client, run) == 4 for run in complete)
    study = optuna.load_study(study_name=f"mnist-exp-{parent.info.run_id}", storage=f"sqlite:///{store}/optuna.db")
    states = [t.state for t in study.trials]
    assert len(states) == 8 and states.count(optuna.trial.TrialState.PRUNED) == len(pruned)
    summary = (sweep_dir / "summary.md").read_text()
    assert summary.count("pruned at epoch") == len(pruned)
    assert "| rank |" in summary.replace("| job | rank |", "| rank |")
    figures = (
        names.OPTIMIZATION_HISTORY_FILE,
        names.PARALLEL_COORDINATES_FILE,
        names.IMPORTANCES_FILE,
        names.SLICE_FILE,
    )
    assert all((sweep_dir / figure).stat().st_size > 10_000 for figure in figures)  # optuna.visualization's
    logged = {a.path for a in client.list_artifacts(parent.info.run_id, names.SUMMARY_DIR)}
    assert {f"{names.SUMMARY_DIR}/{figure}" for figure in figures} <= logged
    assert parent.data.tags[names.BEST_RUN_ID_TAG] in {c.info.run_id for c in complete}


UNEVEN_SEED = 0  # a RandomSampler seed whose first two trials draw 1 and 24 epochs (checked below)


def test_two_workers_start_a_trial_as_soon_as_either_is_free(tmp_path, store, synthetic) -> None:
    run_module(
        tmp_path, "mnist_exp.commands.train", "-m", *synthetic, *FAST, *OPTUNA, "launcher=local_parallel",
        f"tracking.store_dir={store}", f"hydra.sweep.dir={tmp_path / 'sweep'}", "hydra.sweeper.pruner=null",
        "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=2", f"hydra.sweeper.sampler.seed={UNEVEN_SEED}",
        "training.epochs=choice(1,24)", "optimizer.learning_rate=interval(0.001,0.002)",
    )  # fmt: skip
    _, children = sweep_runs(store)
    by_start = sorted(children, key=lambda r: r.info.start_time)
    assert len(by_start) == 4
    # 24 epochs outlast a 1-epoch job's start and end (seconds of imports) even on a loaded machine
    assert {r.data.params["training.epochs"] for r in by_start[:2]} == {"1", "24"}
    first_pair = by_start[:2]
    slowest_end = max(r.info.end_time for r in first_pair)
    assert by_start[2].info.start_time < slowest_end, "the third trial waited for the slowest of the first two"


def finished_children(store: Path) -> int:
    """How many sweep jobs have FINISHED, read straight from the SQLite file: cheap enough to poll
    every 0.1 s, so that a stop lands while the next job runs even where jobs take a second."""
    try:
        with closing(sqlite3.connect(f"file:{store / 'mlflow.db'}?mode=ro", uri=True, timeout=5)) as db:
            query = "SELECT count(*) FROM runs JOIN tags USING (run_uuid) WHERE status = 'FINISHED' AND key = ?"
            return db.execute(query, (names.PARENT_RUN_TAG,)).fetchone()[0]
    except sqlite3.OperationalError:  # no store, or no tables, yet
        return 0


def wait_for_finished(store: Path, count: int, process, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if finished_children(store) >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"{count} jobs did not finish")


def interrupt_after(store: Path, count: int, *args: str, cwd: Path) -> None:
    process = launch(cwd, "mnist_exp.commands.train", "-m", *args)
    try:
        wait_for_finished(store, count, process)
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=120)[0]
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, output[-4000:]


def test_a_grid_sweep_stopped_and_resumed_runs_each_config_once(tmp_path, store, synthetic) -> None:
    grid = [*synthetic, *FAST, f"tracking.store_dir={store}", "training.epochs=2", "training.steps_per_execution=1",
            "optimizer.learning_rate=0.001,0.002,0.003,0.004"]  # fmt: skip
    interrupt_after(store, 2, *grid, f"hydra.sweep.dir={tmp_path / 'first'}", cwd=tmp_path)
    parent, children = sweep_runs(store)
    assert parent.info.status == "KILLED"
    run_module(tmp_path, "mnist_exp.commands.train", "-m", *grid, f"hydra.sweep.dir={tmp_path / 'again'}",
               f"sweep.resume={tmp_path / 'first'}")  # fmt: skip
    again, children = sweep_runs(store)
    assert again.info.run_id == parent.info.run_id and again.info.status == "FINISHED"
    finished = [c for c in children if c.info.status == "FINISHED"]
    assert sorted(c.data.params["optimizer.learning_rate"] for c in finished) == ["0.001", "0.002", "0.003", "0.004"]
    assert len(children) == 4  # the stopped job was resumed in its own run, not run anew


def test_an_optuna_sweep_stopped_after_three_trials_continues_to_six(tmp_path, store, synthetic) -> None:
    search = [*synthetic, *FAST, *OPTUNA, f"tracking.store_dir={store}", "training.epochs=2",
              "hydra.sweeper.n_trials=6", "hydra.sweeper.pruner=null",
              "optimizer.learning_rate=tag(log,interval(1e-4,1e-2))"]  # fmt: skip
    interrupt_after(store, 3, *search, f"hydra.sweep.dir={tmp_path / 'first'}", cwd=tmp_path)
    parent, _ = sweep_runs(store)
    run_module(tmp_path, "mnist_exp.commands.train", "-m", *search, f"hydra.sweep.dir={tmp_path / 'again'}",
               f"sweep.resume={parent.info.run_id}")  # fmt: skip
    again, children = sweep_runs(store)
    assert again.info.run_id == parent.info.run_id
    study = optuna.load_study(study_name=f"mnist-exp-{parent.info.run_id}", storage=f"sqlite:///{store}/optuna.db")
    assert len(study.trials) == 6
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials), [t.state for t in study.trials]
    assert len(children) == 6 and all(c.info.status == "FINISHED" for c in children)


def test_report_compares_two_sweeps(tmp_path, store, synthetic) -> None:
    for name, rates in (("a", "0.001,0.003"), ("b", "0.0003,0.03")):
        run_module(tmp_path, "mnist_exp.commands.train", "-m", *synthetic, *FAST, "training.epochs=2",
                   f"tracking.store_dir={store}", f"hydra.sweep.dir={tmp_path / name}",
                   f"optimizer.learning_rate={rates}")  # fmt: skip
    assert (tmp_path / "a" / names.PARALLEL_COORDINATES_FILE).is_file()
    out = tmp_path / "cmp"
    result = run_module(tmp_path, "mnist_exp.commands.report", str(tmp_path / "a"), str(tmp_path / "b"),
                        "--out", str(out))  # fmt: skip
    table = (out / "comparison.md").read_text()
    assert table in result.stdout
    assert "| best configuration |" in table and "optimizer.learning_rate" in table
    assert (out / "comparison_best.png").stat().st_size > 10_000


def test_a_conditional_search_gives_each_job_only_its_branchs_parameters(tmp_path, store, synthetic) -> None:
    """experiment=optuna_conditional, 4 trials on two workers: a learning rate from the optimizer's own
    range (SGD's momentum only with SGD), the third convolution's filters only where it was kept."""
    run_module(
        tmp_path, "mnist_exp.commands.train", "experiment=optuna_conditional", *synthetic, *ONE_EPOCH,
        f"tracking.store_dir={store}", f"hydra.sweep.dir={tmp_path / 'sweep'}", "hydra.sweeper.n_trials=4",
        "hydra.sweeper.sampler.seed=1",
    )  # fmt: skip
    parent, children = sweep_runs(store)
    assert len(children) == 4 and all(c.info.status == "FINISHED" for c in children)
    study = optuna.load_study(study_name=f"mnist-exp-{parent.info.run_id}", storage=f"sqlite:///{store}/optuna.db")
    sampled = {str(t.number): t.params for t in study.trials}
    branches = set()
    for child in children:
        params, trial = child.data.params, sampled[child.data.tags[names.SWEEP_JOB_TAG]]
        rate, optimizer = float(params["optimizer.learning_rate"]), params["optimizer.name"]
        assert trial["optimizer"] == optimizer
        assert trial[f"optimizer.learning_rate | optimizer={optimizer}"] == pytest.approx(rate)
        if optimizer == "adam":
            assert 1e-4 <= rate <= 1e-2 and "optimizer.momentum" not in params
        else:
            assert 1e-3 <= rate <= 0.2 and params["optimizer.momentum"] == "0.9"
        kept = trial["conv3"] == "kept"
        assert ("model.layers.conv3.filters" in params) == kept
        if kept:
            assert params["model.layers.conv3.filters"] == str(trial["model.layers.conv3.filters | conv3=kept"])
        branches.add((optimizer, trial["conv3"]))
    assert len(branches) >= 3, branches  # this seed's four trials take both sides of both conditions
