"""One owner for a training start: which run it is, said once, with the store opened once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

from mnist_exp.config import compose
from mnist_exp.errors import ConfigError
from mnist_exp.schema import config_hash
from mnist_exp.tracking import names, store
from mnist_exp.tracking.training_run import TrainingRun


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One store for the module (creating one takes seconds); each test keeps to an experiment of its own."""
    return tmp_path_factory.mktemp("training-run") / "mlruns"


@pytest.fixture
def configured(shared: Path, request: pytest.FixtureRequest) -> Callable[..., DictConfig]:
    def compose_with(*overrides: str) -> DictConfig:
        experiment = f"tracking.experiment_name={request.node.name[:60]}"
        return compose([f"tracking.store_dir={shared}", experiment, "tracking.run_name=r", *overrides])

    return compose_with


def earlier_run(cfg: DictConfig, status: str, stop_reason: str | None = None) -> str:
    """A run of ``cfg`` as an earlier process left it, its config logged."""
    client = store.connect(cfg.tracking)
    experiment = store.experiment_id(client, cfg.tracking, cfg.objective)
    tags = {names.CONFIG_HASH_TAG: config_hash(cfg)} | ({names.STOP_REASON_TAG: stop_reason} if stop_reason else {})
    run = client.create_run(experiment, run_name="r", tags=tags).info.run_id
    client.log_text(run, OmegaConf.to_yaml(cfg, resolve=True), names.CONFIG_FILE)
    client.set_terminated(run, status)
    return run


def decided(cfg: DictConfig, caplog: pytest.LogCaptureFixture) -> tuple[TrainingRun, list[str]]:
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="mnist_exp.tracking.training_run"):
        run = TrainingRun(cfg, config_hash(cfg))
    return run, [r.getMessage() for r in caplog.records if r.name == "mnist_exp.tracking.training_run"]


def test_a_start_opens_the_store_once_and_says_in_one_line_that_its_run_is_new(configured, caplog) -> None:
    cfg = configured()
    opened = len(store.OPENED)
    run, said = decided(cfg, caplog)
    assert len(store.OPENED) - opened == 1
    assert run.start is None and run.done is None and run.record is None
    assert len(said) == 1 and said[0].startswith("a new run of experiment")


def test_a_finished_twin_is_reported_instead_when_asked(configured, caplog) -> None:
    cfg = configured("training.skip_if_done=true")
    twin = earlier_run(cfg, "FINISHED")
    run, said = decided(cfg, caplog)
    assert run.done is not None and run.done.info.run_id == twin
    assert said == [f"skipped: run {twin} ({run.done.info.run_name}) already has this config"]
    again, _ = decided(configured(), caplog)  # without skip_if_done a finished twin is trained again
    assert again.done is None and again.start is None


def test_a_run_whose_process_died_is_claimed_and_given_back_if_training_never_begins(configured, caplog) -> None:
    cfg = configured("training.epochs=4")
    died = earlier_run(cfg, "KILLED", f"{names.PROCESS_DIED} (pid 1 on host h)")
    run, said = decided(configured("training.epochs=4", "training.verbose=0"), caplog)
    assert run.start is not None and run.start.run.info.run_id == died
    assert run.cfg.resume == died and run.cfg.training.epochs == 4
    assert said == [f"run {died} (r) continued (this config left it unfinished): training goes on from its "
                    "first epoch (no checkpoint) of 4"]  # fmt: skip
    claimed = run.client.get_run(died)
    assert claimed.info.status == "RUNNING" and names.OWNER_TAG in claimed.data.tags
    with pytest.raises(RuntimeError), run:
        raise RuntimeError("the data cannot be read")
    assert run.client.get_run(died).info.status == "KILLED"  # as it was, for the next start to continue


def test_resume_names_a_run_that_must_exist_and_be_unfinished(configured, caplog) -> None:
    cfg = configured()
    finished = earlier_run(cfg, "FINISHED")
    with pytest.raises(ConfigError, match=f"resume: run {finished} already FINISHED"):
        decided(configured(f"resume={finished}"), caplog)
    with pytest.raises(ConfigError, match=r"resume: no run 0123 in sqlite:///.*Fix: check the run id"):
        decided(configured("resume=0123"), caplog)
    stopped = earlier_run(cfg, "KILLED", "Ctrl-C")
    run, said = decided(configured(f"resume={stopped}"), caplog)
    assert run.start is not None and run.experiment_id == run.start.run.info.experiment_id
    assert said[0].startswith(f"run {stopped} (r) resumed: training goes on from its first epoch")


def test_begin_is_needed_before_the_checkpoint_callbacks(configured, caplog) -> None:
    run, _ = decided(configured(), caplog)
    with pytest.raises(RuntimeError, match="begin"):
        run.checkpoints(None, 1, "val_accuracy", True, None)  # type: ignore[arg-type]
