"""The emulated Cloud Logging: job output as ``ml_job`` log entries, served by ``entries:list``."""

from __future__ import annotations

import base64
import functools
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from steplift_vertex.emulator.filters import matches, parse_filter
from steplift_vertex.emulator.wire import ApiError, now_rfc3339

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_TIMESTAMPS = frozenset({"timestamp", "receiveTimestamp"})


def encode_token(offset: int) -> str:
    """An opaque page token for a list offset."""
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def decode_token(token: str) -> int:
    """The offset of a page token; INVALID_ARGUMENT for a token we did not make."""
    if not token:
        return 0
    try:
        offset = int(json.loads(base64.urlsafe_b64decode(token.encode()))["o"])
    except (ValueError, KeyError, TypeError):
        raise ApiError("INVALID_ARGUMENT", f"Invalid page token: {token!r}") from None
    if offset < 0:
        raise ApiError("INVALID_ARGUMENT", f"Invalid page token: {token!r}")
    return offset


def lookup_path(item: dict[str, Any], path: str) -> Any:
    """The value at a dotted path (None when absent)."""
    value: Any = item
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part.strip('"'))
    return value


class LogBook:
    """Append-only log entries; timestamps strictly increase so ordering is total."""

    def __init__(self) -> None:
        self._entries: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._last = datetime.fromtimestamp(0, UTC)

    def append(self, project: str, job_number: str, task: str, line: str) -> None:
        """One line of a replica's output."""
        with self._lock:
            moment = max(datetime.now(UTC), self._last + timedelta(microseconds=1))
            self._last = moment
            stamp = now_rfc3339(moment)
            self._entries.append(
                {
                    "logName": f"projects/{project}/logs/{task}",
                    "resource": {
                        "type": "ml_job",
                        "labels": {"job_id": job_number, "project_id": project, "task_name": task},
                    },
                    "timestamp": stamp,
                    "receiveTimestamp": stamp,
                    "severity": "INFO",
                    "insertId": f"{len(self._entries) + 1:016x}",
                    "textPayload": line,
                }
            )

    def count(self, job_number: str) -> int:
        """Entries of one job (for tests)."""
        with self._lock:
            return sum(
                1 for entry in self._entries if entry["resource"]["labels"]["job_id"] == job_number
            )

    def list(self, body: dict[str, Any]) -> dict[str, Any]:
        """Answer ``POST /v2/entries:list``."""
        names = body.get("resourceNames") or []
        if not isinstance(names, list) or not names:
            raise ApiError("INVALID_ARGUMENT", "resourceNames: at least one resource is required")
        projects = set()
        for name in names:
            if not isinstance(name, str) or not name.startswith("projects/"):
                raise ApiError("INVALID_ARGUMENT", f"unsupported resource name {name!r}")
            projects.add(name.split("/")[1])
        clauses = parse_filter(str(body.get("filter", "")))
        order = str(body.get("orderBy", "timestamp asc")).strip().lower()
        if order not in ("timestamp asc", "timestamp desc", "timestamp"):
            raise ApiError(
                "INVALID_ARGUMENT", f"orderBy must be 'timestamp asc|desc', not {order!r}"
            )
        size = int(body.get("pageSize") or DEFAULT_PAGE_SIZE)
        if not 0 < size <= MAX_PAGE_SIZE:
            raise ApiError("INVALID_ARGUMENT", f"pageSize must be between 1 and {MAX_PAGE_SIZE}")
        offset = decode_token(str(body.get("pageToken", "")))
        with self._lock:
            selected = [
                entry
                for entry in self._entries
                if entry["resource"]["labels"]["project_id"] in projects
                and matches(clauses, functools.partial(lookup_path, entry), _TIMESTAMPS)
            ]
        if order == "timestamp desc":
            selected.reverse()
        page = selected[offset : offset + size]
        answer: dict[str, Any] = {}
        if page:
            answer["entries"] = page
        if offset + size < len(selected):
            answer["nextPageToken"] = encode_token(offset + size)
        return answer
