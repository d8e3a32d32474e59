"""Test-only network guard: any connection or name lookup that leaves the machine fails and is logged.

The app is offline-first: a test run that tries to reach the internet (a telemetry ping, a weights
download, a pip install) is a bug, even when the machine has no network and the attempt would fail
quietly. ``install()`` patches ``socket`` so that connecting to anything but loopback (127.0.0.0/8,
::1) or a Unix socket, and resolving any name but ``localhost``, raises ``OSError``; each attempt is
appended to the file named by ``VP_NETGUARD_LOG`` (one line: pid, command, what was tried) so the
test process can fail the test even when the attempt happened in a subprocess (a training worker,
the CLI, ``mlflow ui``) that swallowed the error.

Subprocesses load it through ``sitecustomize.py`` beside this file: the test suite puts this folder
on ``PYTHONPATH``. Standard library only, and nothing runs unless ``VP_NETGUARD_LOG`` is set.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import traceback
from typing import Any

LOG_ENV = "VP_NETGUARD_LOG"
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}


class NetworkGuardError(OSError):
    """Raised for a connection or lookup that would leave this machine."""


def _is_loopback_host(host: Any) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    text = str(host).strip("[]").split("%")[0]
    if text.lower() in _LOCAL_NAMES:
        return True
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or address.is_unspecified or bool(mapped and mapped.is_loopback)


def _record(what: str) -> None:
    path = os.environ.get(LOG_ENV)
    if not path:
        return
    where = "".join(traceback.format_stack(limit=12)[:-2]).replace("\n", " | ")
    line = f"pid {os.getpid()} [{' '.join(sys.argv)[:200]}] {what} :: {where[-1500:]}\n"
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line)
    except OSError:
        pass


def _refuse(what: str) -> NetworkGuardError:
    _record(what)
    return NetworkGuardError(f"network guard (tests): {what} refused: tests must not leave this machine")


def _check_address(family: int, address: Any) -> None:
    if family == getattr(socket, "AF_UNIX", object()) or not isinstance(address, tuple):
        return
    if not _is_loopback_host(address[0]):
        raise _refuse(f"connect to {address[0]}:{address[1] if len(address) > 1 else ''}")


def install() -> None:
    """Patch ``socket`` in this process (idempotent)."""
    if getattr(socket, "_vp_netguard", False):
        return
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> Any:
        _check_address(self.family, address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        _check_address(self.family, address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_loopback_host(host):
            raise _refuse(f"name lookup of {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo
    socket._vp_netguard = True  # type: ignore[attr-defined]
