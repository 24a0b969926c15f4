"""Tests of the network guard (``alpha_assets.netguard``), used by the test suite and the Alpha cycle.

Exercised: refusal of non-loopback addresses and host names (before any packet or DNS query leaves), loopback
over IPv4 (and IPv6 where the machine has it) and unix sockets still working, install / uninstall round trip,
and that the root conftest loads the guard for the whole suite. Left untouched: child processes (not guarded).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from alpha_assets import netguard
from alpha_assets.lakehouse.storage import object_store_host_patterns
from alpha_assets.netguard import NetworkRefusedError, is_loopback_host


@pytest.fixture
def guarded() -> Iterator[None]:
    with netguard.loopback_only():
        yield


@pytest.fixture
def loopback_listener() -> Iterator[tuple[str, int]]:
    """A TCP listener on 127.0.0.1 that accepts one connection after another until closed."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.02)  # short, so the thread notices `done` quickly at teardown
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            connection.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[:2]
    done.set()
    thread.join(timeout=2)
    server.close()


def test_socket_guard_loaded_for_the_whole_suite():
    assert netguard.is_installed(), (
        "add pytest_plugins = ['alpha_assets_tests.socket_guard'] to alpha_assets_tests/conftest.py"
    )


@pytest.mark.parametrize("address", [("10.255.255.1", 80), ("1.1.1.1", 443)], ids=["private", "public"])
def test_connect_to_non_loopback_address_raises_guard_error(guarded, address):
    host, port = address
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock,
        pytest.raises(
            NetworkRefusedError, match=rf"network access to {host}:{port} refused: only loopback is allowed here"
        ),
    ):
        sock.connect(address)


def test_connect_ex_to_non_loopback_address_raises_guard_error(guarded):
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock,
        pytest.raises(
            NetworkRefusedError, match=r"network access to 1\.1\.1\.1:53 refused: only loopback is allowed here"
        ),
    ):
        sock.connect_ex(("1.1.1.1", 53))


def test_create_connection_to_host_name_refused_before_dns(guarded):
    with pytest.raises(
        NetworkRefusedError, match=r"network access to api\.binance\.com:443 refused: only loopback is allowed here"
    ):
        socket.create_connection(("api.binance.com", 443), timeout=0.2)


def test_connect_with_host_name_refused(guarded):
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock,
        pytest.raises(NetworkRefusedError, match=r"network access to example\.com:80"),
    ):
        sock.connect(("example.com", 80))


def test_udp_connect_to_public_resolver_refused(guarded):
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock,
        pytest.raises(NetworkRefusedError, match=r"8\.8\.8\.8:53"),
    ):
        sock.connect(("8.8.8.8", 53))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"], ids=["ip", "name"])
def test_connect_to_loopback_works(guarded, loopback_listener, host):
    _, port = loopback_listener

    with socket.create_connection((host, port), timeout=2) as sock:
        assert sock.getpeername()[0] in {"127.0.0.1", "::1"}


def test_connect_ex_to_loopback_returns_zero(guarded, loopback_listener):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        assert sock.connect_ex(loopback_listener) == 0


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 on this machine")
def test_connect_to_ipv6_loopback_works(guarded):
    try:
        server = socket.create_server(("::1", 0), family=socket.AF_INET6)
    except OSError:
        pytest.skip("::1 cannot be bound here")
    with server, socket.create_connection(("::1", server.getsockname()[1]), timeout=2) as sock:
        assert sock.getpeername()[0] == "::1"


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no unix sockets on this platform")
def test_unix_socket_connect_allowed(guarded, tmp_path):
    path = str(tmp_path / "guard.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(path)
            assert client.getpeername() == path


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("LOCALHOST.", True),
        (b"127.0.0.1", True),
        ("0.0.0.0", False),
        ("10.255.255.1", False),
        ("::ffff:1.1.1.1", False),
        ("localhost.evil.com", False),
        ("api.binance.com", False),
        (None, False),
        (2130706433, False),
    ],
    ids=lambda value: repr(value),
)
def test_is_loopback_host_cases(host, allowed):
    assert is_loopback_host(host) is allowed


def test_netguard_installs_nest_and_lift_only_when_all_are_undone():
    depth = netguard.install_depth()
    netguard.install()
    netguard.install()
    assert netguard.install_depth() == depth + 2
    netguard.uninstall()
    assert netguard.is_installed()
    netguard.uninstall()
    assert netguard.install_depth() == depth
    assert netguard.is_installed() == (depth > 0)


def test_netguard_fully_uninstalled_restores_socket_functions():
    depth = netguard.install_depth()
    try:
        for _ in range(depth):
            netguard.uninstall()
        assert not netguard.is_installed()
        assert socket.getaddrinfo.__module__ == "socket"
    finally:
        for _ in range(depth):
            netguard.install()
    assert netguard.install_depth() == depth


@pytest.mark.parametrize(
    ("endpoint", "allowed", "refused"),
    [
        (
            None,
            ["my-bucket.s3.eu-west-1.amazonaws.com", "s3.amazonaws.com", "s3-eu-west-1.amazonaws.com"],
            ["api.binance.com", "s3.amazonaws.com.evil.example", "ec2.eu-west-1.amazonaws.com"],
        ),
        ("https://minio.internal:9000", ["minio.internal", "MINIO.internal."], ["s3.amazonaws.com", "api.okx.com"]),
    ],
    ids=["aws", "endpoint_url"],
)
def test_guard_lets_the_object_store_through_and_nothing_else(monkeypatch, endpoint, allowed, refused):
    if endpoint is None:
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    else:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    patterns = object_store_host_patterns()
    netguard.install(allowed_hosts=patterns)
    try:
        assert [host for host in allowed if not netguard.is_permitted(host)] == []
        assert [host for host in refused if netguard.is_permitted(host)] == []
        with pytest.raises(NetworkRefusedError):
            socket.create_connection((refused[0], 443), timeout=1)
    finally:
        netguard.uninstall(allowed_hosts=patterns)
    assert not netguard.is_permitted(allowed[0]), "the allowance ends with its install"
