"""What logging system metrics costs a training run: the monitor's own CPU time, and the reference run with and without.

    .venv/bin/python benchmarks/system_metrics.py [--rounds 2] [--samples 40]

1. The monitor alone: MLflow's system-metrics monitor (as every run starts it) sampling a
   SQLite store's run every 0.25 s in an otherwise idle process; its CPU time per sample,
   and what that is at the default interval (``tracking.system_metrics_s``) as a share of the
   CPU time training has (every core busy).
2. The reference run with ``tracking.system_metrics`` true and false, alternating, its data
   fetched before the first: training time (the sum of the epochs') and wall time, medians
   over rounds, and their ratio.

Appends a section to benchmarks/RESULTS.md naming the machine.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from compare import Variant, alternating, append_section, benchmark_parser, child_env, run_mnist_exp
from machine import heading, matmul_gflops

from mnist_exp.config import compose
from mnist_exp.data import load


def monitor_cost(samples: int, interval_s: float) -> float:
    """CPU seconds the monitor spends per sample (collect, aggregate, write), in this otherwise idle process."""
    from mnist_exp.tracking.store import open_store
    from mnist_exp.tracking.system_metrics import SystemMetrics

    with tempfile.TemporaryDirectory(prefix="mnist-exp-sysmetrics-") as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        client = open_store(uri)
        run_id = client.create_run(client.create_experiment("cost")).info.run_id
        client.get_run(run_id)  # warm: the store's first query pays its imports
        idle_start = time.process_time()
        time.sleep(samples * interval_s)
        idle = time.process_time() - idle_start
        start = time.process_time()
        monitor = SystemMetrics(uri, run_id, interval_s)
        time.sleep(samples * interval_s)
        monitor.stop()
        busy = time.process_time() - start
        logged = len(client.get_metric_history(run_id, "system/cpu_utilization_percentage"))
    return (busy - idle) / max(logged, 1)


def main() -> int:
    parser = benchmark_parser(__doc__, rounds=2)
    parser.add_argument("--samples", type=int, default=40)
    args = parser.parse_args()
    gflops = matmul_gflops()
    interval = float(compose().tracking.system_metrics_s)
    per_sample = monitor_cost(args.samples, 0.25)
    cores = os.cpu_count() or 1
    share = per_sample / (interval * cores)
    print(f"monitor: {per_sample * 1000:.1f} ms CPU per sample; at {interval:g} s, {share:.4%} of {cores} cores")

    load(compose(["experiment=reference"]).dataset)  # fetched and verified before any run is timed
    env = child_env()
    settings = ("true", "false")
    variants = {s: Variant(s) for s in settings}
    with tempfile.TemporaryDirectory(prefix="mnist-exp-sysmetrics-") as tmp:
        for round_, setting in alternating(args.rounds, settings):
            sample = run_mnist_exp(Path(tmp) / "mlruns", [f"tracking.system_metrics={setting}"], env)
            variants[setting].samples.append(sample)
            print(f"round {round_ + 1} system_metrics={setting}: wall {sample.wall_s:.1f} s, "
                      f"training {sum(sample.epoch_s):.1f} s", flush=True)  # fmt: skip
    on, off = variants["true"], variants["false"]
    train_on, train_off = (statistics.median(sum(s.epoch_s) for s in v.samples) for v in (on, off))
    lines = [
        *heading("system_metrics.py", gflops),
        f"`.venv/bin/python benchmarks/system_metrics.py --rounds {args.rounds} --samples {args.samples}`.",
        "",
        f"- The monitor alone: **{per_sample * 1000:.1f} ms** of CPU per sample ({args.samples} samples at 0.25 s "
        f"in an idle process, idle time subtracted). At the default interval, {interval:g} s, that is "
        f"**{share:.3%}** of the CPU time of {cores} busy cores (target at most 1%).",
        "",
        "| tracking.system_metrics | training time (s) | wall time (s) | test accuracy |",
        "|---|---|---|---|",
    ]
    for setting, v, train in (("true", on, train_on), ("false", off, train_off)):
        accs = ", ".join(f"{x:.4f}" for x in v.accuracies)
        lines.append(f"| {setting} | {train:.1f} | {v.wall:.1f} | {accs} |")
    lines += [
        "",
        f"- The reference run, {args.rounds} rounds alternating, medians: training time on/off "
        f"**{train_on / train_off:.3f}**, wall time on/off {on.wall / off.wall:.3f}. Run-to-run noise on a "
        "2-core machine is larger than 1%; the monitor's own cost above is the figure that bounds the overhead.",
    ]
    append_section(args.out, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
