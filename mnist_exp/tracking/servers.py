"""MLflow's UI and tracking server as child processes, started and stopped cleanly."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

from omegaconf import DictConfig

from mnist_exp.tracking import store, views
from mnist_exp.tracking.names import RUNS_VIEW

LOOPBACK = ("127.0.0.1", "localhost", "::1")
ADDRESS_FAMILIES = (socket.AF_INET, socket.AF_INET6)


def this_machine_names(host: str) -> list[str]:
    """The names and addresses a remote client may use for this machine: its host name, FQDN, the addresses
    the name resolves to and those of its network interfaces (a host name often resolves to 127.0.0.1 only).
    IPv6 addresses are bracketed, as in a Host header; link-local ones (``fe80::…%eth0``) are left out."""
    import psutil

    names = {socket.gethostname(), socket.getfqdn(), "localhost", "127.0.0.1"}
    if host not in ("0.0.0.0", "::"):
        names.add(host)
    addresses = {a.address for found in psutil.net_if_addrs().values() for a in found if a.family in ADDRESS_FAMILIES}
    with contextlib.suppress(OSError):
        addresses |= {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)}
    names |= {f"[{a}]" if ":" in a else a for a in addresses if "%" not in a}
    return sorted(names)


def network_options(host: str, port: int, allowed_hosts: str | None, cors_origins: str | None) -> list[str]:
    """MLflow's --allowed-hosts and --cors-allowed-origins for a server bound beyond loopback.

    MLflow 3 answers only Host headers of localhost and private addresses by default, so a
    client that used this machine's name got "403 Invalid Host header". Unless given, both
    lists are this machine's names and addresses.
    """
    if host in LOOPBACK and allowed_hosts is None and cors_origins is None:
        return []
    names = this_machine_names(host)
    hosts = allowed_hosts or ",".join(f"{name},{name}:{port}" for name in names)
    origins = cors_origins or ",".join(f"http://{name}:{port}" for name in names)
    return ["--allowed-hosts", hosts, "--cors-allowed-origins", origins]


def exposure_warning(host: str, port: int, authenticated: bool) -> str | None:
    """The warning for a server every machine that reaches this one can use; None on loopback."""
    if host in LOOPBACK:
        return None
    if authenticated:
        return f"warning: serving on {host}:{port} beyond this machine; users log in (basic-auth)"
    return (
        f"warning: serving on {host}:{port} beyond this machine, with no authentication: whoever reaches it can "
        "read, change and delete runs. For a shared server: mnist-exp-server app_name=basic-auth "
        "(docs: Beyond one machine)"
    )


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
VIEW_KEY_PARAM = "viewStateShareKey"  # the UI's URL parameter that opens a saved view


def landing_page(uri: str, quiet: Sequence[str] = ()) -> str:
    """The page to open first: the newest run's experiment in the model-training view, on mnist-exp's saved view.

    The view is brought up to date first: the params that differ between the runs become columns,
    except the ``quiet`` ones (``views.refresh``).
    """
    client = store.open_store(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    newest = client.search_runs(experiments, order_by=["attributes.start_time DESC"], max_results=1)
    if not newest:
        return f"#/experiments?{MODEL_TRAINING_VIEW}"
    experiment_id = newest[0].info.experiment_id
    views.refresh(client, experiment_id, quiet)
    return f"#/experiments/{experiment_id}/runs?{MODEL_TRAINING_VIEW}&{VIEW_KEY_PARAM}={RUNS_VIEW}"


def ui_command(uri: str, host: str, port: int, allowed_hosts: str | None = None) -> list[str]:
    """``mlflow ui`` on the store at ``uri``, one worker."""
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
        *network_options(host, port, allowed_hosts, None),
    ]


def server_command(cfg: DictConfig) -> list[str]:
    """``mlflow server`` as the server config (conf/server.yaml) sets it up: artifacts served, workers, app."""
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
    command += network_options(cfg.host, cfg.port, cfg.allowed_hosts, cfg.cors_allowed_origins)
    return command + (["--app-name", cfg.app_name] if cfg.app_name else [])
