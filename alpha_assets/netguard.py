"""Refuse every network connection that does not stay on this machine (loopback or a unix socket).

One implementation for two users: the Alpha cycle's runtime guard (an offline resource) and the test
suite's guard (a pytest plugin). It wraps ``socket.socket.connect``, ``socket.socket.connect_ex`` and
``socket.getaddrinfo`` (through which ``socket.create_connection``, urllib3, requests and asyncio resolve):
any host that is not ``localhost``, an address in 127.0.0.0/8, ``::1`` or an IPv4-mapped loopback is
refused before a packet is sent or a name is resolved. Unix sockets and ``bind`` are left alone.
Installs nest: the guard lifts when every :func:`install` has been undone.

An install may let named hosts through besides loopback (``allowed_hosts``, regular expressions matched against
the whole lower-case name): the Alpha cycle's guard lets its data directory's object store through when that is
an S3 bucket (:func:`alpha_assets.lakehouse.storage.object_store_host_patterns`), and nothing else. The
addresses such a name resolves to are let through as well, for the connection that follows the lookup.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
# A passive lookup (host None or "") resolves the wildcard address for binding: no traffic.
_PASSIVE_HOSTS = frozenset({None, "", b""})

_lock = threading.Lock()
_depth = 0
#: Patterns of host names let through by the installs in force (counted: each uninstall removes its own).
_allowed_patterns: Counter[str] = Counter()
#: Addresses that an allowed name resolved to while the guard was up.
_allowed_addresses: set[str] = set()
_original_connect = socket.socket.connect
_original_connect_ex = socket.socket.connect_ex
_original_getaddrinfo = socket.getaddrinfo


class NetworkRefusedError(RuntimeError):
    """A connection to, or a lookup of, a non-loopback host was attempted under the guard.

    Not an ``OSError`` on purpose: HTTP clients catch ``OSError`` and retry or wrap it; this must surface.
    """


def is_loopback_host(host: object) -> bool:
    """Whether ``host`` (a name, an IP literal, ``bytes`` or ``None``) is loopback.

    ``"localhost"``, ``"127.0.0.1"``, ``"::1"`` and ``"::ffff:127.0.0.1"`` are loopback; a zone suffix
    (``"::1%lo"``) is ignored. Any other name is refused without resolving it.
    """
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    name = host.strip().strip("[]").split("%", 1)[0].rstrip(".").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def _refuse(host: object, port: object) -> None:
    target = host if port is None else f"{host}:{port}"
    raise NetworkRefusedError(f"network access to {target} refused: only loopback is allowed here")


def is_permitted(host: object) -> bool:
    """Whether the guard in force lets ``host`` through: loopback, or a host an install allowed."""
    if is_loopback_host(host):
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    name = host.strip().strip("[]").rstrip(".").lower()
    return name in _allowed_addresses or any(re.fullmatch(pattern, name) for pattern in list(_allowed_patterns))


def _check_address(sock: socket.socket, address: object) -> None:
    if sock.family == getattr(socket, "AF_UNIX", object()):
        return
    host, port = (address[0], address[1]) if isinstance(address, tuple) and len(address) >= 2 else (address, None)
    if not is_permitted(host):
        _refuse(host, port)


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check_address(self, address)
    return _original_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check_address(self, address)
    return _original_connect_ex(self, address)


def _guarded_getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
    if host in _PASSIVE_HOSTS or is_loopback_host(host):
        return _original_getaddrinfo(host, port, *args, **kwargs)
    if not is_permitted(host):
        _refuse(host, port)
    found = _original_getaddrinfo(host, port, *args, **kwargs)
    with _lock:
        _allowed_addresses.update(str(entry[4][0]).split("%", 1)[0].lower() for entry in found)
    return found


def install(allowed_hosts: Iterable[str] = ()) -> None:
    """Start refusing non-loopback connections in this process (nestable; pair with :func:`uninstall`).

    Parameters
    ----------
    allowed_hosts : iterable of str, optional
        Regular expressions of host names to let through as well (matched against the whole lower-case name);
        give the same ones to the matching :func:`uninstall`.
    """
    global _depth
    with _lock:
        _depth += 1
        _allowed_patterns.update(allowed_hosts)
        socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
        socket.getaddrinfo = _guarded_getaddrinfo


def uninstall(allowed_hosts: Iterable[str] = ()) -> None:
    """Undo one :func:`install` (given its ``allowed_hosts``); the guard lifts when every install has been undone."""
    global _depth
    with _lock:
        _depth = max(0, _depth - 1)
        _allowed_patterns.subtract(allowed_hosts)
        for pattern in [p for p, count in _allowed_patterns.items() if count <= 0]:
            del _allowed_patterns[pattern]
        if not _allowed_patterns:
            _allowed_addresses.clear()
        if _depth == 0:
            socket.socket.connect = _original_connect  # type: ignore[method-assign]
            socket.socket.connect_ex = _original_connect_ex  # type: ignore[method-assign]
            socket.getaddrinfo = _original_getaddrinfo


def install_depth() -> int:
    """How many installs are in force (0: unguarded); lets a test see that a runtime guard added its own."""
    return _depth


def is_installed() -> bool:
    """Whether the guard is active in this process."""
    return socket.socket.connect is _guarded_connect


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """Within the block, any non-loopback connection or lookup raises :class:`NetworkRefusedError`."""
    install()
    try:
        yield
    finally:
        uninstall()
