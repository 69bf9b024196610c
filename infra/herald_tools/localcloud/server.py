"""moto's server on loopback, in this process, with the S3 fidelity patch and moto_patches installed."""

from __future__ import annotations

import logging
import socket
import threading
import urllib.request
from types import ModuleType
from typing import Any

from herald_tools.ports import bind_socket

from . import moto_locks, moto_patches, s3_fidelity
from .translate import TranslateStandIn

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4566


def free_port(host: str = DEFAULT_HOST) -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class MotoServer:
    """moto's WSGI app on ``host:port`` (port 0: any free port), quiet, with real-looking S3 events
    and a cost per request that does not grow with what is stored (:mod:`.moto_patches`), and in
    front of it ``translate``: a stand-in of Amazon Translate's TranslateText (moto has none;
    :mod:`.translate`), on the same endpoint.

    moto keeps its state in module-level backends, so there is one set of resources per
    process: run one server per process, and do not use ``moto.mock_aws`` in the same process
    while it runs (entering or leaving the mock resets that state).
    """

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
        self.host = host
        self.port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._patched: list[ModuleType] = []  # the patch modules this server installed
        self.translate = TranslateStandIn()

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> str:
        """Bind (PortInUseError if the port is taken) and serve in a background thread."""
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        # Bound here, not in moto's ThreadedMotoServer: that binds in its thread, and on a taken
        # port werkzeug prints a message and exits that thread while start() waits forever.
        sock = bind_socket(self.host, self.port, "moto's endpoint")
        try:
            app = self.translate.wrap(DomainDispatcherApplication(create_backend_app))
            server = make_server(
                self.host, 0, app, threaded=True, request_handler=MotoRequestHandler, fd=sock.fileno()
            )
        finally:
            sock.close()  # werkzeug serves on its own duplicate of the descriptor
        # moto_locks: concurrent clients get DynamoDB's isolation. Each install is idempotent; a
        # patch already in place (an in-process test's) is left to whoever installed it.
        self._patched = [p for p in (s3_fidelity, moto_patches, moto_locks) if p.install()]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="moto-server", daemon=True)
        self._thread.start()
        self.host, self.port = str(server.server_address[0]), int(server.server_address[1])
        log.debug("moto server listening on %s", self.endpoint_url)
        return self.endpoint_url

    def reset(self) -> None:
        """Forget every resource (moto's reset API)."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
        self.translate.forget_calls()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=10)
        patched, self._patched = self._patched, []
        for patch in patched:
            patch.uninstall()
