"""``mnist-exp-data``: pull, verify and describe the datasets that conf/dataset/ defines."""

from __future__ import annotations

import argparse
import sys
import time

from omegaconf import DictConfig

from mnist_exp.config import compose, group_options
from mnist_exp.data import idx
from mnist_exp.data.idx import DataError
from mnist_exp.data.store import DatasetFiles, pull


def dataset_config(name: str, cache_dir: str | None) -> DictConfig:
    """The resolved ``dataset`` node for one dataset name."""
    overrides = [f"dataset={name}"] + ([f"dataset.cache_dir={cache_dir}"] if cache_dir else [])
    return compose(overrides).dataset


def cmd_pull(configs: list[DictConfig]) -> int:
    failed = 0
    for cfg in configs:
        start = time.perf_counter()
        try:
            pull(cfg)
        except DataError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        dataset = DatasetFiles.from_config(cfg)
        source = dataset.provenance().get("source", "unknown")
        print(f"{cfg.name}: OK in {time.perf_counter() - start:.2f} s ({dataset.cache_dir}, from {source})")
    return 1 if failed else 0


def cmd_verify(configs: list[DictConfig]) -> int:
    bad = total = 0
    for cfg in configs:
        dataset = DatasetFiles.from_config(cfg)
        for spec in dataset.files.values():
            total += 1
            try:
                idx.read(dataset.cache_dir, spec, dataset.fix)
            except DataError as exc:
                print(f"FAIL {exc}")
                bad += 1
            else:
                print(f"OK   {cfg.name}/{spec.filename} sha256 {spec.sha256[:16]}…")
    print(f"{total - bad} of {total} files OK")
    return 1 if bad else 0


def cmd_info(configs: list[DictConfig]) -> int:
    for cfg in configs:
        dataset = DatasetFiles.from_config(cfg)
        source = dataset.provenance()
        print(f"{cfg.name}  {dataset.cache_dir}")
        print(f"  source: {source.get('source', 'not pulled')}  {source.get('fetched_at', '')}")
        print(f"  dataset digest: {dataset.digest}")
        for spec in dataset.files.values():
            path = idx.find(dataset.cache_dir, spec.filename)
            size = f"{path.stat().st_size:>10,d} B" if path else "   missing"
            print(f"  {spec.filename:<26} {size}  sha256 {spec.sha256}")
    return 0


COMMANDS = {"pull": cmd_pull, "verify": cmd_verify, "info": cmd_info}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mnist-exp-data", description="Provision and check the verified IDX files of each dataset."
    )
    parser.add_argument(
        "command",
        choices=sorted(COMMANDS),
        help="pull: fetch what the cache lacks; verify: check every file's digest; info: where each dataset lives",
    )
    parser.add_argument("datasets", nargs="*", help="dataset names (default: all in conf/dataset/)")
    parser.add_argument("--cache-dir", help="use this folder instead of the configured cache (one dataset only)")
    args = parser.parse_args(argv)
    known = group_options("dataset")
    names = args.datasets or known
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown dataset {', '.join(unknown)}; choose from {', '.join(known)}")
    if args.cache_dir and len(names) != 1:
        parser.error("--cache-dir needs exactly one dataset name")
    configs = [dataset_config(name, args.cache_dir) for name in names]
    return COMMANDS[args.command](configs)


if __name__ == "__main__":
    sys.exit(main())
