"""``mnist-exp-data``: pull, verify and describe the datasets that the dataset configs define."""

from __future__ import annotations

import argparse
import sys
import time

from omegaconf import DictConfig, OmegaConf

from mnist_exp.commands import reports_errors
from mnist_exp.config import compose, group_options
from mnist_exp.data import DataError, load, reader


def dataset_config(name: str, overrides: list[str]) -> DictConfig:
    """The ``dataset`` node of one dataset, with ``key=value`` overrides of its own keys."""
    return compose([f"dataset={name}", *(f"dataset.{o}" for o in overrides)]).dataset


def needs_path(cfg: DictConfig) -> bool:
    """A dataset of the user's (folder, npz) with no ``path`` given."""
    return "path" in cfg and OmegaConf.is_missing(cfg, "path")


def cmd_pull(configs: list[DictConfig]) -> int:
    failed = 0
    for cfg in configs:
        start = time.perf_counter()
        try:
            loaded = load(cfg)
        except DataError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"{cfg.name}: OK in {time.perf_counter() - start:.2f} s ({loaded.source}, digest {loaded.digest[:16]}…)")
    return 1 if failed else 0


def cmd_verify(configs: list[DictConfig]) -> int:
    bad = 0
    for cfg in configs:
        problems = reader(cfg).verify(cfg)
        for problem in problems:
            print(f"FAIL {cfg.name}: {problem}")
        if not problems:
            print(f"OK   {cfg.name}")
        bad += bool(problems)
    print(f"{len(configs) - bad} of {len(configs)} datasets OK")
    return 1 if bad else 0


def cmd_info(configs: list[DictConfig]) -> int:
    for cfg in configs:
        print(f"{cfg.name}  ({cfg.format._target_.rsplit('.', 1)[-1]}, cache {cfg.cache_dir})")
        for line in reader(cfg).info(cfg):
            print(f"  {line}")
    return 0


COMMANDS = {"pull": cmd_pull, "verify": cmd_verify, "info": cmd_info}


@reports_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mnist-exp-data",
        description="Provision and check each dataset: IDX files, image folders, NumPy archives, CIFAR-10.",
    )
    parser.add_argument(
        "command",
        choices=sorted(COMMANDS),
        help="pull: fetch or decode what the cache lacks; verify: check every file; info: where each dataset "
        "lives, its files (per class for a folder), digest and cache state",
    )
    parser.add_argument(
        "datasets", nargs="*", help="dataset names, then key=value settings (default: every built-in dataset)"
    )
    parser.add_argument("--cache-dir", help="use this folder instead of the configured cache (one dataset only)")
    args = parser.parse_args(argv)
    known = group_options("dataset")
    names = [a for a in args.datasets if "=" not in a]
    overrides = [a for a in args.datasets if "=" in a] + ([f"cache_dir={args.cache_dir}"] if args.cache_dir else [])
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown dataset {', '.join(unknown)}; choose from {', '.join(known)}")
    if overrides and len(names) != 1:
        parser.error("settings (key=value, --cache-dir) need exactly one dataset name")
    configs = [dataset_config(name, overrides) for name in names or known]
    skipped = [cfg.name for cfg in configs if needs_path(cfg)]
    if skipped and names:
        parser.error(f"{', '.join(skipped)} needs its path: mnist-exp-data {args.command} {skipped[0]} path=...")
    if skipped:
        print(f"({', '.join(skipped)}: give a path to check, e.g. mnist-exp-data info folder path=DIR)")
    return COMMANDS[args.command]([cfg for cfg in configs if not needs_path(cfg)])


if __name__ == "__main__":
    sys.exit(main())
