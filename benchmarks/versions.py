"""Optuna and MLflow, the pinned versions against newer ones: `experiment=optuna_search` in each.

    .venv/bin/python benchmarks/versions.py --new .venv-next/bin/python [--seeds 42 7] [--trials 20]

Runs the search (TPE, 2 workers, its pruner) once per sampler seed with each interpreter, the
two alternating, each into a store of its own, and reports each search's wall time, trials
pruned, epochs trained and best validation accuracy side by side, with the versions each
interpreter has. Make the second environment with ``make`` then
``.venv-next/bin/pip install optuna==X mlflow==Y`` (any environment with the checkout installed).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from compare import HERE, append_section
from machine import heading, matmul_gflops
from search import search

PACKAGES = ("optuna", "mlflow")


def versions_of(python: str) -> str:
    """``optuna X, mlflow Y`` as ``python`` has them."""
    code = "import importlib.metadata as m, sys; print(', '.join(p + ' ' + m.version(p) for p in sys.argv[1:]))"
    return subprocess.run([python, "-c", code, *PACKAGES], capture_output=True, text=True, check=True).stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", default=sys.executable, help="the interpreter with the pinned versions")
    parser.add_argument("--new", required=True, help="the interpreter with the versions to try")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    gflops = matmul_gflops()
    pythons = {versions_of(args.old): args.old, versions_of(args.new): args.new}
    rows = []
    with tempfile.TemporaryDirectory(prefix="mnist-exp-versions-") as tmp:
        for seed in args.seeds:
            for label, python in pythons.items():
                folder = Path(tmp) / f"{seed}-{len(rows)}"
                overrides = [f"hydra.sweeper.n_trials={args.trials}", f"hydra.sweeper.sampler.seed={seed}"]
                wall, best, trials, pruned, epochs = search(folder / "mlruns", folder / "sweep", overrides, python)
                rows.append((label, seed, wall, best, trials, pruned, epochs))
                print(f"{label}, seed {seed}: {wall:.0f} s, best val accuracy {best:.4f}, {pruned} pruned", flush=True)
    lines = [
        *heading("versions.py", gflops),
        f"`.venv/bin/python benchmarks/versions.py --new {args.new} --seeds {' '.join(map(str, args.seeds))} "
        f"--trials {args.trials}`: `experiment=optuna_search` (TPE with the experiment's settings, 2 workers, "
        "successive halving) with each environment, alternating, one search per sampler seed.",
        "",
        "| versions | sampler seed | wall time (s) | trials pruned | epochs trained | best val accuracy |",
        "|---|---|---|---|---|---|",
        *(
            f"| {label} | {seed} | {wall:.0f} | {pruned} of {trials} | {epochs} | {best:.4f} |"
            for label, seed, wall, best, trials, pruned, epochs in rows
        ),
        "",
    ]
    for label in pythons:
        mine = [row for row in rows if row[0] == label]
        lines.append(
            f"- {label}: mean wall time {sum(r[2] for r in mine) / len(mine):.0f} s, "
            f"mean best val accuracy {sum(r[3] for r in mine) / len(mine):.4f}"
        )
    append_section(args.out, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
