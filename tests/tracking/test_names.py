"""Every name mnist-exp writes to MLflow is declared once, and no two mean the same string."""

from __future__ import annotations

from collections import Counter

from mnist_exp.tracking import names


def test_no_two_names_of_a_kind_share_a_value() -> None:
    declared = {key: value for key, value in vars(names).items() if key.isupper() and isinstance(value, str)}
    for kind in ("_TAG", "_ENV", "_FILE", "_PARAM"):
        values = Counter(value for key, value in declared.items() if key.endswith(kind))
        assert [value for value, count in values.items() if count > 1] == [], kind


def test_the_metrics_are_not_also_tags_or_params() -> None:
    declared = {key: value for key, value in vars(names).items() if key.isupper() and isinstance(value, str)}
    tags = {value for key, value in declared.items() if key.endswith(("_TAG", "_PARAM"))}
    assert {names.TEST_ACCURACY, names.TEST_LOSS, names.BEST_VAL_ACCURACY, names.RUN_TRAIN_TIME}.isdisjoint(tags)
