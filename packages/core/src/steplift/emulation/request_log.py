"""The request log: every API call clients made to an emulator, for tests to read back."""

from __future__ import annotations

import builtins
import dataclasses
import threading
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RecordedRequest", "RequestLog"]


@dataclass
class RecordedRequest:
    """One API call a client made to an emulator."""

    service: str
    operation: str
    params: dict[str, Any]
    time: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dataclasses.asdict(self)


class RequestLog:
    """Thread-safe, append-only (until cleared) list of recorded requests."""

    def __init__(self) -> None:
        self._items: list[RecordedRequest] = []
        self._lock = threading.Lock()

    def append(self, request: RecordedRequest) -> None:
        """Record one call."""
        with self._lock:
            self._items.append(request)

    def list(self) -> builtins.list[RecordedRequest]:
        """A snapshot of every recorded call, oldest first."""
        with self._lock:
            return list(self._items)

    def filter(self, operation: str, service: str | None = None) -> builtins.list[RecordedRequest]:
        """The recorded calls of one operation (optionally of one service)."""
        return [
            item
            for item in self.list()
            if item.operation == operation and (service is None or item.service == service)
        ]

    def clear(self) -> None:
        """Forget every recorded call."""
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
