"""moto's server on loopback, in this process, with the S3 fidelity patch installed."""

from __future__ import annotations

import logging
import socket
import urllib.request

from . import s3_fidelity

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4566


def free_port(host: str = DEFAULT_HOST) -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class MotoServer:
    """``ThreadedMotoServer`` on ``host:port`` (port 0: any free port), quiet, with real-looking S3 events.

    moto keeps its state in module-level backends, so there is one set of resources per
    process: run one server per process, and do not use ``moto.mock_aws`` in the same process
    while it runs (entering or leaving the mock resets that state).
    """

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
        self.host = host
        self.port = port
        self._server = None
        self._patched_s3 = False

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> str:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._patched_s3 = s3_fidelity.install()
        server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        server.start()
        self._server = server
        self.host, self.port = server.get_host_and_port()
        log.debug("moto server listening on %s", self.endpoint_url)
        return self.endpoint_url

    def reset(self) -> None:
        """Forget every resource (moto's reset API)."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        if self._patched_s3:
            s3_fidelity.uninstall()
            self._patched_s3 = False
