"""A search space from Hydra's sweep syntax: ``choice``, ``range``, ``interval`` and ``tag(log, ...)``."""

from __future__ import annotations

from collections.abc import Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from mnist_exp.errors import UserError


class SearchSpaceError(UserError):
    """A swept parameter Optuna cannot sample; the message names it and the fix."""


def distribution(override: Override) -> BaseDistribution:
    """The Optuna distribution of one sweep override."""
    sweep, key, log = override.value(), override.key_or_group, "log" in getattr(override.value(), "tags", ())
    if isinstance(sweep, ChoiceSweep):
        return CategoricalDistribution(sweep.list)
    if isinstance(sweep, RangeSweep):
        values = [sweep.start, sweep.stop, sweep.step]
        if all(isinstance(v, int) for v in values):
            return IntDistribution(int(sweep.start), int(sweep.stop) - 1, step=int(sweep.step))
        return CategoricalDistribution(list(override.sweep_iterator()))
    if isinstance(sweep, IntervalSweep):
        start, end = sweep.start, sweep.end
        if isinstance(start, int) and isinstance(end, int):
            return IntDistribution(start, end, log=log)
        return FloatDistribution(float(start), float(end), log=log)
    raise SearchSpaceError(
        f"{key}: {override.input_line} is not a sweep Optuna can sample. "
        "Fix: use choice(a, b, ...), range(start, stop[, step]), interval(low, high) or tag(log, interval(low, high))"
    )


def search_space(overrides: Sequence[str]) -> tuple[dict[str, BaseDistribution], list[str]]:
    """The swept parameters as distributions, and the fixed overrides every trial gets."""
    space: dict[str, BaseDistribution] = {}
    fixed: list[str] = []
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        if override.is_sweep_override():
            space[override.key_or_group] = distribution(override)
        else:
            fixed.append(override.input_line)
    return space, fixed


def as_override(key: str, value: object) -> str:
    """A sampled value as a Hydra override (strings quoted, so any value parses back)."""
    text = f"'{value}'" if isinstance(value, str) else str(value)
    return f"{key}={text}"
