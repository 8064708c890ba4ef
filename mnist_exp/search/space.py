"""A search space from Hydra's sweep syntax: ``choice``, ``range``, ``interval`` and ``tag(log, ...)``,
with conditional parameters (``ConditionalSpace``): sampled, or set, only when another took a value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
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


SWITCH_TAG = "switch"  # tag(switch, choice(...)): a parameter of the study only, never a config override
BRANCH_MARK = " | "  # an Optuna parameter of a branch: "<key> | <param>=<value>", one distribution each


@dataclass(frozen=True)
class Branch:
    """What applies when ``param`` took ``value``: parameters to sample, overrides to set."""

    param: str
    value: str
    space: dict[str, BaseDistribution]
    fixed: list[str]

    def applies(self, params: Mapping[str, Any]) -> bool:
        return self.param in params and str(params[self.param]) == self.value

    def study_name(self, key: str) -> str:
        """The branch's own name for ``key`` in the study (its range differs from another branch's)."""
        return f"{key}{BRANCH_MARK}{self.param}={self.value}"


@dataclass(frozen=True)
class ConditionalSpace:
    """A search space with parameters that exist only for one value of another.

    ``space`` and ``fixed`` apply to every trial; ``switches`` are study parameters that
    are no config keys (their branches say what each value means); each ``Branch`` applies
    when its parameter, one of ``space``'s, took its value.
    """

    space: dict[str, BaseDistribution]
    fixed: list[str]
    switches: frozenset[str] = frozenset()
    branches: list[Branch] = field(default_factory=list)

    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        """The trial's parameters: ``space``'s (asked already), then each applying branch's, in order."""
        params = dict(trial.params)
        for branch in self.branches:
            if branch.applies(params):
                for key, dist in branch.space.items():
                    params[branch.study_name(key)] = suggest(trial, branch.study_name(key), dist)
        return params

    def overrides(self, params: Mapping[str, Any]) -> list[str]:
        """The job's overrides for sampled ``params``: the fixed ones, the values, the applying branches' own."""
        values = {key.split(BRANCH_MARK)[0]: value for key, value in params.items() if key not in self.switches}
        active = [branch for branch in self.branches if branch.applies(params)]
        return [
            *self.fixed,
            *(as_override(key, value) for key, value in values.items()),
            *(override for branch in active for override in branch.fixed),
        ]

    def keys(self) -> list[str]:
        """The config keys a trial may vary (switches and deletions left out)."""
        keys = [k for k in self.space if k not in self.switches]
        return list(dict.fromkeys([*keys, *(k for branch in self.branches for k in branch.space)]))


def suggest(trial: optuna.Trial, name: str, dist: BaseDistribution) -> Any:
    """Sample ``dist`` as parameter ``name`` of ``trial`` (Optuna's public suggest API)."""
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
    raise SearchSpaceError(f"{name}: Optuna cannot sample {type(dist).__name__}")


def switches(overrides: Sequence[str]) -> frozenset[str]:
    """The swept keys tagged ``switch``: parameters of the study that are no config keys."""
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return frozenset(
        o.key_or_group for o in parsed if o.is_sweep_override() and SWITCH_TAG in getattr(o.value(), "tags", ())
    )


def conditional_space(overrides: Sequence[str], conditional: Mapping[str, Mapping[str, Any]]) -> ConditionalSpace:
    """The space of ``overrides`` (``search_space``) with the ``conditional`` branches of the sweeper's config.

    Each branch is ``"<param>=<value>": {key: sweep or value}``: a sweep is sampled, a value set,
    and ``~key`` removes the key, only in trials where ``param`` took ``value``.
    """
    space, fixed = search_space(overrides)
    switched = switches(overrides)
    branches: list[Branch] = []
    known = set(space)  # a branch hangs on a parameter every trial has
    for condition, entries in conditional.items():
        param, sep, value = str(condition).partition("=")
        param, value = param.strip(), value.strip()
        if not sep or param not in known:
            raise SearchSpaceError(
                f"hydra.sweeper.conditional.{condition}: a branch is named '<param>=<value>' after a swept "
                f"parameter (one of {sorted(known)}). Fix: sweep {param or condition} in hydra.sweeper.params first"
            )
        choices = getattr(space.get(param), "choices", None)
        if choices is not None and value not in map(str, choices):
            raise SearchSpaceError(
                f"hydra.sweeper.conditional.{condition}: {param} never takes {value!r}; it takes {list(choices)}"
            )
        lines = [f"~{key.lstrip('~')}" if key.startswith("~") else f"{key}={entry}" for key, entry in entries.items()]
        branch_space, branch_fixed = search_space(lines)
        clash = set(branch_space) & set(space)
        if clash:
            raise SearchSpaceError(
                f"hydra.sweeper.conditional.{condition}: {sorted(clash)} is swept for every trial already. "
                "Fix: sweep it in the branches only"
            )
        branches.append(Branch(param, value, branch_space, branch_fixed))
    return ConditionalSpace(space, fixed, switched, branches)
