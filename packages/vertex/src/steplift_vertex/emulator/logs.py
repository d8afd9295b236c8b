"""The emulated Cloud Logging: job output as ``ml_job`` log entries, served by ``entries:list``.

Each line a replica writes becomes an entry labelled with the job's number and the replica's
task name (``workerpool1-0``), as Vertex AI writes them.
"""

from __future__ import annotations

import functools
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from steplift_vertex.emulator.errors import ApiError
from steplift_vertex.emulator.validation import (
    decode_token,
    encode_token,
    lookup_path,
    matches,
    now_rfc3339,
    parse_filter,
)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_TIMESTAMPS = frozenset({"timestamp", "receiveTimestamp"})


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
