"""A one-node SLURM cluster from Debian's packages (slurm-wlm, munge) in a folder of its own, on loopback only.

``make test`` installs the packages. The daemons run as root (slurmd must), listen on
127.0.0.1 alone (``CommunicationParameters=NoInAddrAny,NoCtldInAddrAny``) and are stopped
by their process ids. No accounting database: the launcher must work without ``sacct``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
NODE = "mnistnode"
KILL_WAIT_S = 10  # seconds between a cancelled job's SIGTERM and its SIGKILL


def available() -> str | None:
    """Why a cluster cannot be started here (None if it can)."""
    if os.geteuid() != 0:
        return "slurmd runs as root"
    missing = [d for d in (*DAEMONS, "sbatch") if shutil.which(d) is None and not Path(f"/usr/sbin/{d}").exists()]
    return f"not installed: {', '.join(missing)} (make test installs slurm-wlm and munge)" if missing else None


def memory_mb() -> int:
    """The node's memory for slurm.conf: what the machine has, less a margin."""
    total_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return max(1024, total_kb // 1024 - 1024)


def config(folder: Path, ctld_port: int, node_port: int) -> str:
    return f"""ClusterName=mnistexp
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={node_port}
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
AuthType=auth/munge
AuthInfo=socket={folder}/munge.socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
MinJobAge=30
KillWait={KILL_WAIT_S}
NodeName={NODE} NodeHostname=localhost NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={memory_mb()} State=UNKNOWN
PartitionName=debug Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
"""


def listening_addresses(pids: list[int]) -> list[str]:
    """The local addresses the processes ``pids`` listen on (TCP), from ``ss``."""
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    return [line.split()[3] for line in out.splitlines() if any(f"pid={pid}," in line for pid in pids)]


def stop(pid: int, timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL if it outlives ``timeout``."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def one_node_slurm(folder: Path, ctld_port: int, node_port: int) -> Iterator[dict[str, str]]:
    """Start munge, slurmctld and slurmd; yield the environment that points SLURM's commands at them."""
    for sub in ("state", "spool"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    conf = folder / "slurm.conf"
    conf.write_text(config(folder, ctld_port, node_port))
    env = {"SLURM_CONF": str(conf)}
    pids: list[int] = []

    def pid_of(name: str) -> int:
        path = folder / f"{name}.pid"
        for _ in range(100):
            if path.is_file() and path.read_text().strip():
                return int(path.read_text())
            time.sleep(0.1)
        raise RuntimeError(f"{name} did not start: {(folder / f'{name}.log').read_text()[-2000:]}")

    try:
        subprocess.run(
            ["munged", "--force", f"--socket={folder}/munge.socket", f"--key-file={key}",
             f"--log-file={folder}/munged.log", f"--pid-file={folder}/munged.pid", f"--seed-file={folder}/munged.seed"],
            check=True,
        )  # fmt: skip
        pids.append(pid_of("munged"))
        subprocess.run(["slurmctld", "-f", str(conf), "-i"], check=True)
        pids.append(pid_of("slurmctld"))
        subprocess.run(["slurmd", "-f", str(conf), "-N", NODE], check=True)
        pids.append(pid_of("slurmd"))
        deadline = time.monotonic() + 30
        while "idle" not in sinfo(env):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the node did not come up: {sinfo(env)}")
            time.sleep(0.5)
        yield env
    finally:
        with contextlib.suppress(Exception):
            subprocess.run(["scancel", "--full", "--partition=debug"], env=os.environ | env, timeout=10)
            time.sleep(1)
        for pid in reversed(pids):
            stop(pid)


def sinfo(env: dict[str, str]) -> str:
    return subprocess.run(["sinfo", "-h", "-o", "%T"], env=os.environ | env, capture_output=True, text=True).stdout
