"""The UI's and the server's command lines and what they say about exposure."""

from __future__ import annotations

import socket

from mnist_exp.tracking import servers


def test_loopback_needs_no_host_lists_and_gets_no_warning() -> None:
    assert servers.network_options("127.0.0.1", 5000, None, None) == []
    assert servers.exposure_warning("127.0.0.1", 5000, authenticated=False) is None
    command = servers.ui_command("sqlite:///x.db", "127.0.0.1", 5000)
    assert command[-6:] == ["--host", "127.0.0.1", "--port", "5000", "--workers", "1"]


def test_every_interface_lets_this_machines_names_in_and_warns_without_authentication() -> None:
    options = servers.network_options("0.0.0.0", 5000, None, None)
    hosts = options[options.index("--allowed-hosts") + 1].split(",")
    assert f"{socket.gethostname()}:5000" in hosts and "0.0.0.0" not in hosts
    warning = servers.exposure_warning("0.0.0.0", 5000, authenticated=False)
    assert warning is not None and "no authentication" in warning and "app_name=basic-auth" in warning
    assert "log in" in (servers.exposure_warning("0.0.0.0", 5000, authenticated=True) or "")
    given = servers.network_options("0.0.0.0", 5000, "ml.example.org", None)
    assert given[:2] == ["--allowed-hosts", "ml.example.org"]
