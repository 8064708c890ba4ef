"""``mnist-exp-ui`` and ``mnist-exp-server``: MLflow's UI and tracking server, started and stopped cleanly."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

from mnist_exp.cli import tracking_uri


def wait_for_port(host: str, port: int, process: subprocess.Popen, timeout: float) -> bool:
    """True once something accepts connections on host:port; False if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        with socket.socket() as probe:
            probe.settimeout(0.2)
            if probe.connect_ex((host, port)) == 0:
                return True
        time.sleep(0.1)
    return False


def serve(command: list[str], host: str, port: int, label: str, timeout: float, path: str = "") -> int:
    """Run an MLflow server until Ctrl-C or SIGTERM stops it and its children; print its address once it answers.

    The server's own log goes to stderr; stdout carries only the address line.
    """
    env = os.environ | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    start = time.monotonic()
    process = subprocess.Popen(command, env=env, stdout=sys.stderr, start_new_session=True)

    def stop() -> None:
        """SIGTERM to the server's process group; what is left after 3 s (workers included) gets SIGKILL."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=3)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def interrupt(*_: object) -> None:
        # Unwind the main thread (which may be waiting on the child, holding its lock) and stop below.
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        if not wait_for_port(host, port, process, timeout):
            why = (
                f"it exited with code {process.poll()}, see its log above"
                if process.poll() is not None
                else (f"nothing answered within {timeout:.0f} s")
            )
            print(f"error: {label} did not start on {host}:{port}: {why}", file=sys.stderr)
            return 1
        print(
            f"{label}\n  http://{host}:{port}/{path}  (ready in {time.monotonic() - start:.1f} s; Ctrl-C stops it)",
            flush=True,
        )
        return process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop()


# The UI's model-training view (runs, metrics, models) rather than its GenAI view (traces, sessions),
# the runs sorted by test accuracy, best first.
MODEL_TRAINING_VIEW = "workflowType=machine_learning"
BEST_FIRST = "orderByKey=metrics.%60test_accuracy%60&orderByAsc=false"


def landing_page(uri: str) -> str:
    """The page to open first: the runs table of the newest run's experiment, in the model-training view."""
    from mnist_exp import tracking

    client = tracking.open_store(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    newest = client.search_runs(experiments, order_by=["attributes.start_time DESC"], max_results=1)
    if not newest:
        return f"#/experiments?{MODEL_TRAINING_VIEW}"
    return f"#/experiments/{newest[0].info.experiment_id}/runs?{MODEL_TRAINING_VIEW}&{BEST_FIRST}"


def main(argv: list[str] | None = None) -> int:
    """Start the MLflow UI on the project's store; Ctrl-C stops it."""
    parser = argparse.ArgumentParser(prog="mnist-exp-ui", description=main.__doc__)
    parser.add_argument("--port", type=int, default=5000, help="port to listen on (default 5000)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1, this machine only)")
    parser.add_argument("--tracking-uri", help="the store to show (default: MLFLOW_TRACKING_URI or the project's)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the UI to answer")
    args = parser.parse_args(argv)
    uri = tracking_uri(args.tracking_uri)
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        args.host,
        "--port",
        str(args.port),
        "--workers",
        "1",
    ]
    return serve(command, args.host, args.port, f"MLflow UI for {uri}", args.timeout, landing_page(uri))


def server_main(argv: list[str] | None = None) -> int:
    """Start a shared MLflow tracking server from conf/server.yaml; overrides as key=value arguments."""
    parser = argparse.ArgumentParser(prog="mnist-exp-server", description=server_main.__doc__)
    parser.add_argument("overrides", nargs="*", help="e.g. port=5001 backend_store_uri=postgresql://...")
    args = parser.parse_args(argv)

    from mnist_exp.config import compose

    cfg = compose(args.overrides, config_name="server")
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        cfg.backend_store_uri,
        "--serve-artifacts",
        "--artifacts-destination",
        cfg.artifacts_destination,
        "--host",
        cfg.host,
        "--port",
        str(cfg.port),
        "--workers",
        str(cfg.workers),
    ]
    if cfg.app_name:
        command += ["--app-name", cfg.app_name]
    label = f"MLflow tracking server on {cfg.backend_store_uri}, artifacts in {cfg.artifacts_destination}"
    return serve(command, cfg.host, cfg.port, label, cfg.startup_timeout)


if __name__ == "__main__":
    sys.exit(main())
