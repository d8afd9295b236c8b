"""A job's output from Cloud Logging (``entries:list``), read incrementally.

Vertex AI writes each replica's stdout/stderr as log entries of resource type ``ml_job``
labelled with the numeric job id. The cursor remembers the last timestamp seen and the
insert ids already returned at that timestamp, so a later read starts there: entries sharing
a timestamp are neither repeated nor skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from steplift.models import LogChunk

DEFAULT_LOGGING_ENDPOINT = "https://logging.googleapis.com"
MAX_PAGES_PER_READ = 20


class JsonPoster(Protocol):
    """Posts a JSON body and returns the decoded JSON answer (raises on HTTP errors)."""

    def __call__(self, url: str, body: dict[str, Any]) -> dict[str, Any]: ...


@dataclass
class LogCursor:
    """Where the next read starts: a timestamp and the insert ids seen at exactly that time."""

    timestamp: str | None = None
    seen: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, cursor: str | None) -> LogCursor:
        """Decode a cursor made by :meth:`dump` (None: from the start)."""
        if not cursor:
            return cls()
        data = json.loads(cursor)
        return cls(data.get("t"), list(data.get("ids", [])))

    def dump(self) -> str:
        """The opaque cursor string."""
        return json.dumps({"t": self.timestamp, "ids": self.seen}, separators=(",", ":"))


def entry_text(entry: dict[str, Any]) -> str:
    """The line a log entry carries (textPayload, or jsonPayload.message)."""
    if "textPayload" in entry:
        return str(entry["textPayload"])
    payload = entry.get("jsonPayload")
    if isinstance(payload, dict):
        return str(payload.get("message", json.dumps(payload, sort_keys=True)))
    return ""


def read_job_logs(
    post: JsonPoster, endpoint: str, project: str, job_number: str, cursor: str | None
) -> LogChunk:
    """New lines of job ``job_number`` after ``cursor``, and the next cursor."""
    position = LogCursor.parse(cursor)
    query = f'resource.type="ml_job" AND resource.labels.job_id="{job_number}"'
    if position.timestamp:
        query += f' AND timestamp>="{position.timestamp}"'
    body: dict[str, Any] = {
        "resourceNames": [f"projects/{project}"],
        "filter": query,
        "orderBy": "timestamp asc",
        "pageSize": 1000,
    }
    lines: list[str] = []
    seen = set(position.seen)
    for _ in range(MAX_PAGES_PER_READ):
        answer = post(f"{endpoint.rstrip('/')}/v2/entries:list", body)
        for entry in answer.get("entries", []):
            stamp = str(entry.get("timestamp", ""))
            insert_id = str(entry.get("insertId", ""))
            if stamp == position.timestamp:
                if insert_id in seen:
                    continue
            else:
                position.timestamp = stamp
                seen = set()
            seen.add(insert_id)
            for line in entry_text(entry).splitlines() or [""]:
                lines.append(line)
        token = answer.get("nextPageToken")
        if not token:
            break
        body["pageToken"] = token
    position.seen = sorted(seen)
    return LogChunk(lines, position.dump() if position.timestamp else cursor)
