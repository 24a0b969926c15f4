"""Refuse every network connection that does not stay on this machine (loopback or a unix socket).

Used by the Alpha cycle at run time and by the test suite, so both enforce the same rule.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from collections.abc import Iterator
from typing import Any


class NetworkRefusedError(ConnectionRefusedError):
    """A connection to a non-loopback address was attempted under the guard."""


_lock = threading.Lock()
_depth = 0
_original_connect = socket.socket.connect
_original_connect_ex = socket.socket.connect_ex


def is_loopback_address(address: Any) -> bool:
    """True for unix-socket paths, ``localhost``, 127.0.0.0/8 and ::1."""
    if isinstance(address, str | bytes):  # AF_UNIX path
        return True
    host = address[0] if isinstance(address, tuple) and address else address
    if isinstance(host, bytes):
        host = host.decode()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(str(host).split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _check(address: Any) -> None:
    if not is_loopback_address(address):
        raise NetworkRefusedError(f"network access to {address!r} refused: only loopback is allowed here")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check(address)
    return _original_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check(address)
    return _original_connect_ex(self, address)


def install() -> None:
    """Start refusing non-loopback connections in this process (nestable; pair with :func:`uninstall`)."""
    global _depth
    with _lock:
        _depth += 1
        socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


def uninstall() -> None:
    """Undo one :func:`install`; the guard lifts when every install has been undone."""
    global _depth
    with _lock:
        _depth = max(0, _depth - 1)
        if _depth == 0:
            socket.socket.connect = _original_connect  # type: ignore[method-assign]
            socket.socket.connect_ex = _original_connect_ex  # type: ignore[method-assign]


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """Within the block, any connection to a non-loopback address raises :class:`NetworkRefusedError`."""
    install()
    try:
        yield
    finally:
        uninstall()
