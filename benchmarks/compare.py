"""Benchmark harness: the reference mnist-exp run against the naive recipe in Keras and in PyTorch.

    .venv/bin/pip install -e ".[bench]"        # adds torch==2.13.0 (CPU)
    .venv/bin/python benchmarks/compare.py [--rounds 3] [--out benchmarks/RESULTS.md] [-- mnist-exp overrides]

Runs, alternating within each round, (a) naive_keras.py, (b) naive_torch.py and
(c) `mnist-exp experiment=reference` with full MLflow tracking into a temporary
store, all on the same verified MNIST files, each as a fresh process. Reports
medians over rounds: whole-process wall time, steady epoch time (epochs 2-5),
training samples/s, peak RSS and test accuracy, the ratios (c)/(a) and (c)/(b),
each round's wall times with its own (c)/(a), and (c)'s effective FLOP rate as a
fraction of the fp32 matmul rate measured at the start. The results are appended
to RESULTS.md under a heading naming the machine (CPU, flags, cores).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from machine import heading, matmul_gflops, training_flops_per_image
from mlflow import MlflowClient
from mlflow.entities import Run

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


@dataclass
class Sample:
    wall_s: float
    peak_rss_mb: float
    epoch_s: list[float]
    train_s: list[float]
    train_samples: int
    test_accuracy: float


@dataclass
class Variant:
    name: str
    samples: list[Sample] = field(default_factory=list)

    def median(self, value) -> float:
        return statistics.median(value(s) for s in self.samples)

    @property
    def wall(self) -> float:
        return self.median(lambda s: s.wall_s)

    @property
    def steady_epoch(self) -> float:
        return self.median(lambda s: statistics.median(s.epoch_s[1:]))

    @property
    def throughput(self) -> float:
        return self.median(lambda s: s.train_samples / statistics.median(s.train_s[1:]))

    @property
    def rss(self) -> float:
        return self.median(lambda s: s.peak_rss_mb)

    @property
    def accuracies(self) -> list[float]:
        return [s.test_accuracy for s in self.samples]


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run a command; its wall time, peak RSS in MiB, and stdout."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed with exit code {process.returncode}")
    return wall, usage.ru_maxrss / 1024, text


def run_script(script: str, env: dict[str, str]) -> Sample:
    wall, rss, out = timed([sys.executable, str(HERE / script)], env)
    result = json.loads(out.strip().splitlines()[-1])
    return Sample(wall, rss, result["epoch_s"], result["train_s"], result["train_samples"], result["test_accuracy"])


def latest_run(store: Path, experiment: str) -> tuple[MlflowClient, Run]:
    """The newest run of an experiment in a SQLite store, and a client on that store."""
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    return client, client.search_runs([experiment_id], order_by=["attributes.start_time DESC"], max_results=1)[0]


def history(client: MlflowClient, run: Run, metric: str) -> list[float]:
    """A metric's values in step order."""
    return [m.value for m in sorted(client.get_metric_history(run.info.run_id, metric), key=lambda m: m.step)]


def append_section(path: Path, lines: list[str]) -> None:
    """Append lines to the results file and show them."""
    text = "\n".join(lines) + "\n"
    with path.open("a") as f:
        f.write(text)
    print(text)


def judge(lines: list[str], text: str, ok: bool) -> bool:
    """Add ``text`` to a section with whether its targets were met; ``ok``."""
    lines.append(f"{text}: {'met' if ok else 'NOT met'}")
    return ok


def benchmark_parser(description: str | None, rounds: int) -> argparse.ArgumentParser:
    """A benchmark's command line: ``--rounds`` and ``--out`` (the results file it appends to)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    return parser


def child_env() -> dict[str, str]:
    """The environment the timed commands run in: no tracking URI of the caller's, TensorFlow quiet."""
    return {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"} | {"TF_CPP_MIN_LOG_LEVEL": "2"}


def alternating(rounds: int, names: tuple[str, ...]) -> Iterator[tuple[int, str]]:
    """(round, name) for each of ``names`` in every round, their order rotated from round to round."""
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            yield round_, name


def run_mnist_exp(store: Path, overrides: list[str], env: dict[str, str]) -> Sample:
    command = [
        sys.executable,
        "-m",
        "mnist_exp.commands.train",
        "experiment=reference",
        f"tracking.store_dir={store}",
        "hydra.run.dir=" + str(store / "outputs"),
        "training.verbose=0",
        *overrides,
    ]
    wall, rss, _ = timed(command, env)
    client, run = latest_run(store, "reference")
    epoch_s, rates = history(client, run, "epoch_time_s"), history(client, run, "train_samples_per_s")
    train_samples = int(
        float(run.data.params["dataset.train_size"]) * (1 - float(run.data.params["training.validation_split"]))
    )
    return Sample(
        wall, rss, epoch_s, [train_samples / r for r in rates], train_samples, run.data.metrics["test_accuracy"]
    )


def reference_flops_per_image(overrides: list[str]) -> float:
    """Training FLOPs per image of the reference run's model (forward and backward)."""
    from mnist_exp.config import compose
    from mnist_exp.network import compile_model

    return training_flops_per_image(compile_model(compose(["experiment=reference", *overrides]), 750))


def report(variants: dict[str, Variant], rounds: int, overrides: list[str], gflops: float) -> list[str]:
    a, b, c = variants["naive_keras"], variants["naive_torch"], variants["mnist-exp"]
    effective = reference_flops_per_image(overrides) * c.throughput / 1e9
    lines = [
        *heading("compare.py", gflops),
        f"{rounds} rounds, the three variants alternating within "
        "each round; medians over rounds. Steady epoch time and samples/s are medians of epochs 2-5; samples/s "
        "counts the 48,000 training images over the training part of an epoch (validation excluded).",
        "",
        f"Command: `.venv/bin/python benchmarks/compare.py --rounds {rounds}"
        + (f" -- {' '.join(overrides)}" if overrides else "")
        + "`",
        "",
        "| variant | wall time (s) | steady epoch (s) | train samples/s | peak RSS (MiB) | test accuracy |",
        "|---|---|---|---|---|---|",
    ]
    for key, label in (
        ("naive_keras", "(a) naive Keras"),
        ("naive_torch", "(b) naive PyTorch"),
        ("mnist-exp", "(c) mnist-exp reference, full tracking"),
    ):
        v = variants[key]
        accs = ", ".join(f"{x:.4f}" for x in v.accuracies)
        lines.append(f"| {label} | {v.wall:.1f} | {v.steady_epoch:.2f} | {v.throughput:,.0f} | {v.rss:,.0f} | {accs} |")
    lines += [
        "",
        f"- (c)/(a) whole-process wall time: **{c.wall / a.wall:.2f}** (target at most 0.75)",
        f"- (c)/(b) training throughput: **{c.throughput / b.throughput:.2f}** (target at least 1.1)",
        f"- (c)/(a) training throughput: {c.throughput / a.throughput:.2f}; (b)/(a) wall time: {b.wall / a.wall:.2f}",
        f"- (c) effective training rate: {effective:.0f} GFLOP/s (forward and backward FLOPs of the model times "
        f"train samples/s), **{effective / gflops:.2f}** of the fp32 matmul rate",
        "",
        "Wall time in each round (s), and (c)/(a) within the round:",
        "",
        "| round | (a) naive Keras | (b) naive PyTorch | (c) mnist-exp | (c)/(a) |",
        "|---|---|---|---|---|",
    ]
    ratios = [sc.wall_s / sa.wall_s for sa, sc in zip(a.samples, c.samples, strict=True)]
    for i, (sa, sb, sc) in enumerate(zip(a.samples, b.samples, c.samples, strict=True)):
        lines.append(f"| {i + 1} | {sa.wall_s:.1f} | {sb.wall_s:.1f} | {sc.wall_s:.1f} | {ratios[i]:.2f} |")
    lines += [
        "",
        f"Per-round (c)/(a): median {statistics.median(ratios):.2f}, highest {max(ratios):.2f}, "
        f"lowest {min(ratios):.2f}.",
    ]
    return lines


def main() -> int:
    parser = benchmark_parser(__doc__, rounds=3)
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for the mnist-exp run")
    args = parser.parse_args()
    env = child_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    gflops = matmul_gflops()
    print(f"fp32 matmul rate: {gflops:.0f} GFLOP/s", flush=True)
    variants = {name: Variant(name) for name in ("naive_keras", "naive_torch", "mnist-exp")}
    with tempfile.TemporaryDirectory(prefix="mnist-exp-bench-") as tmp:
        for round_, name in alternating(args.rounds, tuple(variants)):
            if name == "mnist-exp":
                sample = run_mnist_exp(Path(tmp) / "mlruns", args.overrides, env)
            else:
                sample = run_script(f"{name}.py", env)
            variants[name].samples.append(sample)
            print(
                f"round {round_ + 1} {name}: wall {sample.wall_s:.1f} s, "
                f"epochs {[round(e, 2) for e in sample.epoch_s]}, test accuracy {sample.test_accuracy:.4f}, "
                f"peak RSS {sample.peak_rss_mb:.0f} MiB",
                flush=True,
            )
    append_section(args.out, report(variants, args.rounds, args.overrides, gflops))
    return 0


if __name__ == "__main__":
    sys.exit(main())
