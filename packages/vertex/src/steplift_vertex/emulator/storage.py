"""Cloud Storage beside the emulated Vertex AI: gcp-storage-emulator (the ``emulator`` extra)
on its own port of 127.0.0.1, reached by clients and jobs through ``STORAGE_EMULATOR_HOST``."""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from typing import Any

HOST = "127.0.0.1"
INSTALL_HINT = 'pip install "steplift-vertex[emulator]"'


class StorageServer:
    """An in-memory GCS emulator holding ``buckets``; ``url`` is set while it runs."""

    def __init__(self, buckets: Sequence[str], *, port: int = 0) -> None:
        self.buckets = tuple(buckets)
        self.port = port
        self.url: str | None = None
        self._server: Any = None

    def start(self) -> str:
        """Serve (port 0: a free one), create the buckets; returns the URL."""
        try:
            from gcp_storage_emulator.server import create_server  # type: ignore[import-untyped]
        except ImportError as error:
            raise RuntimeError(f"the GCS emulator is missing: {INSTALL_HINT}") from error
        from gcp_storage_emulator.handlers import buckets  # type: ignore[import-untyped]

        gcs = create_server(HOST, self.port, in_memory=True)
        gcs.start()
        # gcp-storage-emulator keeps its HTTP server on the API thread (`_api._httpd`).
        httpd = gcs._api._httpd
        port = httpd.server_address[1]
        print_error = httpd.handle_error

        def handle_error(request: Any, client_address: Any) -> None:
            # A client that went away mid-response (a killed launcher) is not an error.
            if not isinstance(sys.exc_info()[1], ConnectionError):
                print_error(request, client_address)

        httpd.handle_error = handle_error
        for name in self.buckets:
            buckets.create_bucket(name, gcs._storage)
        self._server = gcs
        self.url = f"http://{HOST}:{port}"
        return self.url

    def stop(self) -> None:
        """Stop serving and join the server's thread."""
        if self._server is None:
            return
        api_thread = self._server._api
        self._server.stop()
        # Its join() only shuts the server down; wait for the thread itself too.
        threading.Thread.join(api_thread, 10.0)
        self._server = None
        self.url = None
