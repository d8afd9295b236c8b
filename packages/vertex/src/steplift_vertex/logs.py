"""A job's output from Cloud Logging (``entries:list``), read incrementally.

Vertex AI writes each replica's stdout/stderr as log entries of resource type ``ml_job``
labelled with the numeric job id and the replica's task name (``resource.labels.task_name``:
``workerpool0-0`` for the chief, ``workerpool1-0``, ``workerpool1-1``... for the workers; the
service's own messages say ``service``). In a job of several nodes each replica's line gets a
``[node R] `` prefix, R being its node rank (workerpool0-0 is node 0, workerpool1-i node
1 + i). The cursor remembers the last timestamp seen and the insert ids already returned at
that timestamp, so a later read starts there: entries sharing a timestamp are neither
repeated nor skipped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from steplift.models import LogChunk

DEFAULT_LOGGING_ENDPOINT = "https://logging.googleapis.com"
MAX_PAGES_PER_READ = 20

_TASK_NAME = re.compile(r"^workerpool([0-9]+)-([0-9]+)$")


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


def node_rank(entry: dict[str, Any]) -> int | None:
    """The node rank of the replica that wrote ``entry`` (None: not a replica's line).

    steplift's jobs have one chief (workerpool0, always one replica) and their other nodes in
    workerpool1, so workerpool0-0 is node 0 and workerpool1-i node 1 + i.
    """
    labels = entry.get("resource", {}).get("labels", {})
    match = _TASK_NAME.match(str(labels.get("task_name", "")))
    if match is None:
        return None
    pool, index = int(match.group(1)), int(match.group(2))
    if pool == 0:
        return index
    return 1 + index if pool == 1 else None


def read_job_logs(
    post: JsonPoster,
    endpoint: str,
    project: str,
    job_number: str,
    cursor: str | None,
    *,
    nodes: int = 1,
) -> LogChunk:
    """New lines of job ``job_number`` after ``cursor``, and the next cursor.

    With ``nodes`` above 1 each replica's line is prefixed ``[node R] ``.
    """
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
            rank = node_rank(entry) if nodes > 1 else None
            prefix = "" if rank is None else f"[node {rank}] "
            for line in entry_text(entry).splitlines() or [""]:
                lines.append(prefix + line)
        token = answer.get("nextPageToken")
        if not token:
            break
        body["pageToken"] = token
    position.seen = sorted(seen)
    return LogChunk(lines, position.dump() if position.timestamp else cursor)
