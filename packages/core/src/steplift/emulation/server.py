"""`LocalServer`: serves a WSGI app on 127.0.0.1 from a background thread (TLS optional)."""

from __future__ import annotations

import logging
import socketserver
import ssl
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Self, TypeAlias
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

__all__ = ["LocalServer", "StartResponse", "WSGIApp"]

logger = logging.getLogger(__name__)


StartResponse: TypeAlias = Callable[..., Any]
WSGIApp: TypeAlias = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins the request threads: nothing lingers
    # socketserver's default backlog of 5 drops connections when many launches poll at once
    # (the client then waits a second before trying again): a cloud endpoint does not.
    request_queue_size = 256


class _QuietHandler(WSGIRequestHandler):
    # Without this every small response waits ~40 ms for a delayed ACK (measured).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("emulator: " + format, *args)


class LocalServer:
    """Serves a WSGI app on 127.0.0.1:``port`` (0: any free port) from a background thread,
    over TLS when given a certificate and key."""

    def __init__(
        self,
        app: WSGIApp,
        port: int = 0,
        cert: tuple[Path, Path] | None = None,
        name: str = "emulator",
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
            # A short poll keeps stop() quick: shutdown() waits for the loop to notice.
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{name}-{self.port}",
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

    def start(self) -> Self:
        """Start serving in the background."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and wait for the threads."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(10.0)
        self._server.server_close()
