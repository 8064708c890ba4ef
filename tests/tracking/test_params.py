"""A config as MLflow params: dotted keys, string values."""

from __future__ import annotations

from omegaconf import OmegaConf

from mnist_exp.tracking.params import flatten


def test_flatten_keeps_plain_lists_whole_and_indexes_lists_of_nodes() -> None:
    cfg = OmegaConf.create({"a": {"b": 1, "shape": [28, 28, 1]}, "layers": [{"units": 8}, {"units": 4}]})
    assert flatten(cfg) == {"a.b": "1", "a.shape": "[28, 28, 1]", "layers.0.units": "8", "layers.1.units": "4"}


def test_a_value_is_its_string_and_an_empty_branch_leaves_no_key() -> None:
    assert flatten({"x": None, "y": True, "z": 0.5, "empty": {}}) == {"x": "None", "y": "True", "z": "0.5"}
