"""MLflow's UI and tracking server as child processes, started and stopped cleanly."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

from omegaconf import DictConfig

LOOPBACK = ("127.0.0.1", "localhost", "::1")
ADDRESS_FAMILIES = (socket.AF_INET, socket.AF_INET6)
STOP_GRACE_S = 3.0  # how long a stopped server may finish its requests before SIGKILL


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
        """SIGTERM to the server's process group; SIGKILL to what is left once the serving processes have
        ended, or after ``STOP_GRACE_S``.

        What is left then is mlflow's command, which only waits for them (its exit would take a
        second more), or whatever did not stop in time.
        """
        import psutil

        try:
            serving = psutil.Process(process.pid).children(recursive=True) or [psutil.Process(process.pid)]
        except psutil.NoSuchProcess:
            serving = []
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        psutil.wait_procs(serving, timeout=STOP_GRACE_S)
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
