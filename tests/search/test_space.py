"""The search space, read from Hydra's sweep syntax."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from mnist_exp.search.space import SearchSpaceError, as_override, conditional_space, search_space


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


CONDITIONAL = {
    "optimizer=adam": {"optimizer.learning_rate": "tag(log, interval(1e-4, 1e-2))"},
    "optimizer=sgd": {"optimizer.learning_rate": "tag(log, interval(1e-3, 1e-1))", "optimizer.momentum": 0.9},
    "conv3=kept": {"model.layers.conv3.filters": "choice(32, 64)"},
    "conv3=removed": {"~model.layers.conv3": None},
}


def test_a_branchs_parameters_are_sampled_and_set_only_when_its_condition_holds() -> None:
    space = conditional_space(["optimizer=choice(adam,sgd)", "conv3=tag(switch, choice(kept, removed))"], CONDITIONAL)
    assert space.switches == {"conv3"}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(12):
        trial = study.ask(space.space)
        params = space.sample(trial)
        overrides = space.overrides(params)
        rate = [float(o.split("=")[1]) for o in overrides if o.startswith("optimizer.learning_rate=")]
        assert len(rate) == 1
        if params["optimizer"] == "adam":
            assert 1e-4 <= rate[0] <= 1e-2 and "optimizer.momentum=0.9" not in overrides
        else:
            assert 1e-3 <= rate[0] <= 1e-1 and "optimizer.momentum=0.9" in overrides
        filters = [o for o in overrides if o.startswith("model.layers.conv3.filters=")]
        assert (params["conv3"] == "kept") == (len(filters) == 1) == ("~model.layers.conv3" not in overrides)
        assert not any(o.startswith("conv3=") for o in overrides)  # a switch is no config key
        seen.add((params["optimizer"], params["conv3"]))
        study.tell(trial, 0.5)
    assert len(seen) == 4
    assert space.keys() == ["optimizer", "optimizer.learning_rate", "model.layers.conv3.filters"]


def test_a_branch_on_no_swept_parameter_or_an_impossible_value_is_named_with_the_fix() -> None:
    with pytest.raises(SearchSpaceError, match=r"conditional.batch=64: .*Fix: sweep batch"):
        conditional_space(["optimizer=choice(adam,sgd)"], {"batch=64": {"x": 1}})
    with pytest.raises(SearchSpaceError, match=r"optimizer never takes 'rmsprop'"):
        conditional_space(["optimizer=choice(adam,sgd)"], {"optimizer=rmsprop": {"x": 1}})
    with pytest.raises(SearchSpaceError, match=r"swept for every trial already"):
        conditional_space(["optimizer=choice(adam,sgd)", "x=choice(1,2)"], {"optimizer=sgd": {"x": "choice(3,4)"}})
