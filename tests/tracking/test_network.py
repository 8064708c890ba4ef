"""Serving beyond loopback: a warning that there is no authentication, and remote clients answered.

The server binds every interface of a network namespace of the test's own (``unshare --net``,
loopback only), and a client there asks for it by this machine's name, as a remote client would.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import textwrap

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="network namespaces need root"),
]

CLIENT = textwrap.dedent(
    """
    import http.client, subprocess, sys
    ui = subprocess.Popen(sys.argv[2:], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    banner = ui.stdout.readline() + ui.stdout.readline()
    for name in sys.argv[1].split(","):  # each as the client's URL names it: http://<name>:5000/
        connection = http.client.HTTPConnection(name, 5000, timeout=30)
        connection.request("GET", "/")
        print("status", name, connection.getresponse().status)
    ui.terminate()
    print("stderr", ui.communicate(timeout=30)[1])
    """
)


# A network address of this machine, other than loopback: given to the namespace's only interface.
ADDRESS = "10.9.8.7"


def test_the_ui_bound_beyond_loopback_warns_and_answers_clients_that_use_this_machines_name(tmp_path) -> None:
    """A client on another machine names this one by its host name or by one of its addresses (which
    the host name often does not resolve to)."""
    ui = [sys.executable, "-m", "mnist_exp.commands.ui", "--host", "0.0.0.0", "--port", "5000",
          "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]  # fmt: skip
    name = socket.gethostname()
    client = [sys.executable, "-c", CLIENT, f"{name},{ADDRESS}", *ui]
    namespace = ["unshare", "--net", "--pid", "--fork", "--mount-proc"]
    hosts = tmp_path / "hosts"  # the host name resolves to loopback in the namespace, as /etc/hosts often has it
    hosts.write_text(f"127.0.0.1 localhost {name}\n")
    script = (f"ip link set lo up && ip addr add {ADDRESS}/32 dev lo && mount --bind {hosts} /etc/hosts && "
              f"{shlex.join(client)}")  # fmt: skip
    namespace.insert(1, "--mount")
    result = subprocess.run([*namespace, "bash", "-c", script], capture_output=True, text=True, timeout=180)
    output = result.stdout + result.stderr[-3000:]
    assert f"status {name} 200" in result.stdout, output
    assert f"status {ADDRESS} 200" in result.stdout, output
    assert "warning: serving on 0.0.0.0:5000 beyond this machine, with no authentication" in result.stdout
