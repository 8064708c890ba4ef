"""What the sweep callback hands every job: the parent's id and the store, through Hydra's own overrides."""

from __future__ import annotations

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import open_dict

from mnist_exp.config import compose
from mnist_exp.tracking.sweep_callback import pass_to_jobs, quoted, swept_keys


def test_a_value_is_quoted_so_hydra_reads_it_back_whole() -> None:
    for value in ["abc123", "sqlite:////tmp/a b/mlflow.db", "it's", "back\\slash", "ends\\", "q\\'", "a,b=c"]:
        override = OverridesParser.create().parse_override(f"key={quoted(value)}")
        assert override.value() == value


def test_every_job_gets_the_variables_as_env_set_overrides() -> None:
    cfg = compose(["training.epochs=2"], return_hydra_config=True)
    with open_dict(cfg):  # as Hydra's multirun holds a sweep's overrides
        cfg.hydra.overrides.task = ["optimizer.learning_rate=0.01,0.1", "training.epochs=2"]
    pass_to_jobs(cfg, {"MNIST_EXP_SWEEP_PARENT_RUN_ID": "p1", "MLFLOW_TRACKING_URI": "sqlite:////t/m.db"})
    assert list(cfg.hydra.overrides.hydra)[-2:] == [
        "++hydra.job.env_set.MNIST_EXP_SWEEP_PARENT_RUN_ID='p1'",
        "++hydra.job.env_set.MLFLOW_TRACKING_URI='sqlite:////t/m.db'",
    ]
    assert swept_keys(cfg) == ["optimizer.learning_rate"]
