"""`LocalServer`: serves a WSGI app on 127.0.0.1 from a background thread (TLS optional).

A client that goes away mid-request or mid-response (a closed or reset connection, a TLS
stream cut short) is a debug line, not a traceback on stderr: clients do that, and the
standard library's servers print every such case (:func:`client_went_away`).
"""

from __future__ import annotations

import logging
import socketserver
import ssl
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Self, TypeAlias
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer, make_server

__all__ = ["LocalServer", "StartResponse", "WSGIApp", "client_went_away"]

logger = logging.getLogger(__name__)


StartResponse: TypeAlias = Callable[..., Any]
WSGIApp: TypeAlias = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def client_went_away(error: BaseException | None) -> bool:
    """True for the errors of a client that closed or reset its connection mid-exchange."""
    return isinstance(error, ConnectionError | ssl.SSLEOFError | ssl.SSLZeroReturnError)


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins the request threads: nothing lingers
    # socketserver's default backlog of 5 drops connections when many launches poll at once
    # (the client then waits a second before trying again): a cloud endpoint does not.
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client gone while its request was read is a debug line (socketserver would
        print a traceback); anything else is reported as socketserver reports it."""
        error = sys.exc_info()[1]
        if client_went_away(error):
            logger.debug("emulator: client %s went away: %r", client_address, error)
            return
        super().handle_error(request, client_address)


class _ServerHandler(ServerHandler):
    def handle_error(self) -> None:
        # wsgiref passes over a reset or broken pipe, but not a TLS stream cut short, and it
        # would print a traceback and try to answer a client that is gone.
        error = sys.exc_info()[1]
        if client_went_away(error):
            logger.debug("emulator: client went away during the response: %r", error)
            self.close()
            return
        super().handle_error()


class _QuietHandler(WSGIRequestHandler):
    # Without this every small response waits ~40 ms for a delayed ACK (measured).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("emulator: " + format, *args)

    def handle(self) -> None:
        """WSGIRequestHandler.handle, run by a handler that is quiet about clients gone."""
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.requestline = ""
            self.request_version = ""
            self.command = ""
            self.send_error(414)
            return
        if not self.parse_request():  # an error was answered
            return
        handler = _ServerHandler(
            self.rfile,
            self.wfile,  # type: ignore[arg-type]  # as WSGIRequestHandler.handle passes it
            self.get_stderr(),
            self.get_environ(),
            multithread=False,
        )
        handler.request_handler = self  # type: ignore[attr-defined]  # wsgiref's back-pointer
        handler.run(self.server.get_app())  # type: ignore[attr-defined]  # a WSGIServer's


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
