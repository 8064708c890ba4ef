"""``mnist-exp-ui``: the MLflow UI on the project's store, bound to loopback, ready in seconds."""

from __future__ import annotations

import argparse
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


def ui_command(uri: str, host: str, port: int) -> list[str]:
    """The MLflow UI with one worker on the given store."""
    return [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]


def main(argv: list[str] | None = None) -> int:
    """Start the MLflow UI on the project's store; Ctrl-C stops it."""
    parser = argparse.ArgumentParser(prog="mnist-exp-ui", description=main.__doc__)
    parser.add_argument("--port", type=int, default=5000, help="port to listen on (default 5000)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1, this machine only)")
    parser.add_argument("--tracking-uri", help="the store to show (default: MLFLOW_TRACKING_URI or the project's)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the UI to answer")
    args = parser.parse_args(argv)

    uri = tracking_uri(args.tracking_uri)
    env = os.environ | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    start = time.monotonic()
    # The server's own log goes to stderr; stdout carries only the address.
    process = subprocess.Popen(
        ui_command(uri, args.host, args.port), env=env, stdout=sys.stderr, start_new_session=True
    )

    def stop(*_: object) -> None:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(0)))
    try:
        if not wait_for_port(args.host, args.port, process, args.timeout):
            stop()
            print(
                f"error: the MLflow UI did not start on {args.host}:{args.port} (is the port taken?)", file=sys.stderr
            )
            return 1
        print(
            f"MLflow UI for {uri}\n  http://{args.host}:{args.port}  (ready in {time.monotonic() - start:.1f} s;"
            " Ctrl-C stops it)",
            flush=True,
        )
        return process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop()


if __name__ == "__main__":
    sys.exit(main())
