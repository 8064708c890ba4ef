"""Commands that work on finished runs: ``mnist-exp-register`` and ``mnist-exp-predict``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def tracking_uri(explicit: str | None) -> str:
    """The store to read: ``--tracking-uri``, else the config's (MLFLOW_TRACKING_URI or the project's)."""
    if explicit:
        return explicit
    from mnist_exp.config import compose

    return compose().tracking.uri


def client_for(uri: str):
    """A client on the store at ``uri``, the fluent API pointed there too (for model URIs)."""
    from mnist_exp import tracking

    tracking.use_store(uri)
    return tracking.open_store(uri)


def register_main(argv: list[str] | None = None) -> int:
    """Register a run's model (for a sweep's parent run, its best job's) in the Model Registry."""
    parser = argparse.ArgumentParser(prog="mnist-exp-register", description=register_main.__doc__)
    parser.add_argument("run_id", help="a training run id, or a sweep's parent run id")
    parser.add_argument("--tracking-uri", help="the MLflow store (default: MLFLOW_TRACKING_URI or the project's)")
    args = parser.parse_args(argv)

    from mnist_exp.models import ModelLookupError, register

    try:
        version = register(client_for(tracking_uri(args.tracking_uri)), args.run_id)
    except ModelLookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"models:/{version.name}/{version.version}")
    return 0


def predict_main(argv: list[str] | None = None) -> int:
    """Classify PNG/JPEG images of any size, or .npy arrays, with a logged or registered model."""
    parser = argparse.ArgumentParser(prog="mnist-exp-predict", description=predict_main.__doc__)
    parser.add_argument("--model", required=True, help="models:/<name>/<version>, models:/<model id>, or a run id")
    parser.add_argument("files", nargs="+", type=Path, help="images (.png, .jpg) or arrays (.npy)")
    parser.add_argument("--json", action="store_true", help="print one JSON list instead of lines")
    parser.add_argument("--tracking-uri", help="the MLflow store (default: MLFLOW_TRACKING_URI or the project's)")
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import mlflow.keras
    import numpy as np

    from mnist_exp.images import load_input
    from mnist_exp.models import ModelLookupError, resolve, run_config

    client = client_for(tracking_uri(args.tracking_uri))
    try:
        resolved = resolve(client, args.model)
    except ModelLookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    dataset = run_config(client, resolved.run).dataset
    shape = tuple(dataset.image_shape)
    model = mlflow.keras.load_model(resolved.uri)

    results: list[dict] = []
    inputs: list[np.ndarray] = []
    for path in args.files:
        try:
            inputs.append(load_input(path, shape))
            results.append({"file": str(path)})
        except Exception as exc:  # any unreadable file is reported on its own line
            results.append({"file": str(path), "error": f"{type(exc).__name__}: {exc}"})
    if inputs:
        probabilities = model.predict(np.stack(inputs), verbose=0)
        for result, row in zip((r for r in results if "error" not in r), probabilities, strict=True):
            label = int(row.argmax())
            result |= {"class": label, "name": dataset.class_names[label], "probability": float(row[label])}
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            if "error" in r:
                print(f"{r['file']}: error: {r['error']}")
            else:
                print(f"{r['file']}: {r['class']} ({r['name']}) p={r['probability']:.3f}")
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(predict_main())
