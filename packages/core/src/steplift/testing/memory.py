"""An artifact store held in memory, for tests of launches that need no real storage."""

from __future__ import annotations

import threading


class MemoryStore:
    """An artifact store in a dict (``blobs``), safe to share between launching threads.

    Satisfies :class:`steplift.store.ArtifactStore`; tests read ``blobs`` to see what a
    launch stored (receipts, execution info, code packages).
    """

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put(self, uri: str, data: bytes) -> None:
        with self._lock:
            self.blobs[uri] = bytes(data)

    def get(self, uri: str) -> bytes:
        with self._lock:
            return self.blobs[uri]

    def exists(self, uri: str) -> bool:
        with self._lock:
            return uri in self.blobs

    def list(self, prefix: str) -> list[str]:
        with self._lock:
            return sorted(uri for uri in self.blobs if uri.startswith(prefix))
