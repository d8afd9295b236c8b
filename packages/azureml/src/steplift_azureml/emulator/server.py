"""A threaded WSGI server on 127.0.0.1, over TLS or plain HTTP."""

from __future__ import annotations

import socketserver
import ssl
import threading
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from steplift.testing.emulation import WSGIApp


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


class LocalServer:
    """Serves a WSGI app on 127.0.0.1:``port`` (0: any free port) in a background thread."""

    def __init__(
        self, app: WSGIApp, port: int = 0, cert: tuple[Path, Path] | None = None
    ) -> None:
        self._server = make_server(
            "127.0.0.1", port, app, server_class=_ThreadingServer, handler_class=_QuietHandler
        )
        if cert is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(cert[0]), str(cert[1]))
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.scheme = "https" if cert else "http"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"azureml-emulator-{self.port}",
            daemon=True,
        )

    @property
    def port(self) -> int:
        """The port served."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. https://127.0.0.1:PORT."""
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start serving in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()
