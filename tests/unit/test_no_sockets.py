"""tests/unit runs without sockets (tests/unit/conftest.py): each way out to the network fails."""

from __future__ import annotations

import socket
import urllib.request

import pytest
from pytest_socket import SocketBlockedError

pytestmark = pytest.mark.filterwarnings("ignore:A test tried to use socket:UserWarning")


@pytest.fixture(scope="module")
def socket_in_a_module_fixture() -> type[BaseException] | None:
    """What opening a socket in a module-scoped fixture's setup raised (None: nothing)."""
    try:
        socket.socket().close()
    except BaseException as error:  # recorded for the test to check
        return type(error)
    return None


def test_a_socket_cannot_be_made() -> None:
    with pytest.raises(SocketBlockedError):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)


def test_a_connection_to_loopback_fails() -> None:
    with pytest.raises(SocketBlockedError):
        socket.socket().connect(("127.0.0.1", 9))
    with pytest.raises(SocketBlockedError):
        socket.create_connection(("127.0.0.1", 9), timeout=1)


def test_an_http_request_fails() -> None:
    with pytest.raises(SocketBlockedError):
        urllib.request.urlopen("http://127.0.0.1:9/", timeout=1)


def test_names_do_not_resolve() -> None:
    with pytest.raises(SocketBlockedError):
        socket.getaddrinfo("localhost", 80)
    with pytest.raises(SocketBlockedError):
        socket.gethostbyname("localhost")


def test_unix_sockets_are_blocked_too() -> None:
    with pytest.raises(SocketBlockedError):
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with pytest.raises(SocketBlockedError):
        socket.socketpair()


def test_a_module_fixture_is_blocked_as_well(socket_in_a_module_fixture: type[BaseException] | None) -> None:
    assert socket_in_a_module_fixture is SocketBlockedError
