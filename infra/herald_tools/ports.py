"""Listening sockets for the local cloud's servers, and the error a taken port gives.

Kept free of heavy imports: ``herald local`` checks its ports with it before loading anything.
"""

from __future__ import annotations

import errno
import socket


class PortInUseError(OSError):
    """A port the local cloud was asked to listen on is taken by another program."""

    def __init__(self, host: str, port: int, what: str = "the local cloud") -> None:
        super().__init__(errno.EADDRINUSE, f"port {port} is in use", f"{host}:{port}")
        self.host = host
        self.port = port
        self.what = what

    def __str__(self) -> str:
        return f"port {self.port} ({self.what}) is in use"


def bind_socket(host: str, port: int, what: str = "the local cloud") -> socket.socket:
    """A listening TCP socket on ``host:port`` (0: any free port); PortInUseError if it is taken.

    The servers of the local cloud bind through this in the caller's thread, so a taken port is
    an exception there (not a server thread that dies while the caller waits for it).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # As http.server and werkzeug do: a port left in TIME_WAIT by a previous run is reusable;
        # on Linux and macOS a port another socket listens on is still refused.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            raise PortInUseError(host, port, what) from None
        raise
    return sock


def port_in_use(host: str, port: int) -> bool:
    """Whether ``host:port`` cannot be bound right now (port 0 never is)."""
    if port == 0:
        return False
    try:
        bind_socket(host, port).close()
    except PortInUseError:
        return True
    return False


__all__ = ["PortInUseError", "bind_socket", "port_in_use"]
