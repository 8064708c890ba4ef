"""The search space, read from Hydra's sweep syntax."""

from __future__ import annotations

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from mnist_exp.search.space import SearchSpaceError, as_override, search_space


def test_the_search_space_comes_from_hydras_sweep_syntax() -> None:
    space, fixed = search_space(["optimizer.learning_rate=tag(log,interval(1e-4,1e-2))", "training.epochs=2",
                                 "training.batch_size=choice(32,64)", "model.dropout=range(0,3)"])  # fmt: skip
    assert space["optimizer.learning_rate"] == FloatDistribution(1e-4, 1e-2, log=True)
    assert space["training.batch_size"] == CategoricalDistribution((32, 64))
    assert space["model.dropout"] == IntDistribution(0, 2)
    assert fixed == ["training.epochs=2"]


def test_a_value_goes_back_as_an_override_hydra_reads() -> None:
    assert as_override("optimizer", "sgd") == "optimizer='sgd'"
    assert as_override("training.batch_size", 64) == "training.batch_size=64"


def test_a_sweep_the_search_cannot_take_names_the_key() -> None:
    with pytest.raises(SearchSpaceError, match=r"training\.seed"):
        search_space(["training.seed=glob(*)"])
