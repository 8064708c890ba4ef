"""``mnist-exp-predict``: classify pictures or arrays with a logged or registered model."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from mnist_exp.commands import add_epoch_option, add_store_option, reports_errors, store_client


def print_results(results: list[dict], as_json: bool) -> None:
    if as_json:
        print(json.dumps(results, indent=2))
        return
    for r in results:
        if "error" in r:
            print(f"{r['file']}: error: {r['error']}")
        else:
            warning = f" (warning: {r['warning']})" if "warning" in r else ""
            print(f"{r['file']}: {r['class']} ({r['name']}) p={r['probability']:.3f}{warning}")


SUFFIXES = {"K": 10**3, "M": 10**6, "G": 10**9}


def pixel_count(text: str) -> int:
    """A number of pixels as a user writes it: ``40000000``, ``40_000_000``, ``40M`` or ``4e7``."""
    number, scale = text.strip(), 1
    if number[-1:].upper() in SUFFIXES:
        number, scale = number[:-1], SUFFIXES[number[-1].upper()]
    try:
        count = int(float(number) * scale)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of pixels (e.g. 40M or 40000000)") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: the limit must be at least 1 pixel")
    return count


@reports_errors
def main(argv: list[str] | None = None) -> int:
    """Classify PNG/JPEG images of any size, or .npy arrays, with a logged or registered model."""
    parser = argparse.ArgumentParser(prog="mnist-exp-predict", description=main.__doc__)
    parser.add_argument("--model", required=True, help="models:/<name>/<version>, models:/<model id>, or a run id")
    parser.add_argument("files", nargs="+", type=Path, help="images (.png, .jpg) or arrays (.npy)")
    parser.add_argument("--json", action="store_true", help="print one JSON list instead of lines")
    parser.add_argument(
        "--max-pixels", type=pixel_count, default="40M", help="refuse larger images before decoding them (default 40M)"
    )
    add_store_option(parser)
    add_epoch_option(parser)
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from mnist_exp.predict import predict_files
    from mnist_exp.tracking.registry import resolve

    client = store_client(args)
    results = predict_files(client, resolve(client, args.model, args.epoch), args.files, args.max_pixels)
    print_results(results, args.json)
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
