"""Unit tests touch no network: every test here runs with sockets blocked by pytest-socket.

Creating any socket (inet or unix) or resolving a name raises ``SocketBlockedError``, in a test
and in the fixtures it sets up. A test that needs a server (moto's, the push service, a port of
its own) belongs in tests/integration or tests/localcloud; here it cannot opt out.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def no_sockets(socket_disabled: None) -> None:
    """pytest-socket's ``socket_disabled`` for every test of this directory.

    Being requested, it makes pytest-socket block sockets in its setup hook, which runs before any
    fixture is set up, so module-scoped fixtures are blocked too.
    """


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Refuse the ways out: the ``enable_socket`` marker and the ``socket_enabled`` fixture."""
    if item.get_closest_marker("enable_socket") or "socket_enabled" in getattr(item, "fixturenames", ()):
        raise pytest.UsageError(
            f"{item.nodeid}: tests/unit runs without sockets; a test that needs them belongs in "
            "tests/integration or tests/localcloud"
        )
