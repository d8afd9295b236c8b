"""A training job's CloudWatch Logs, read as steplift's ``LogChunk``.

SageMaker writes each host's output to stream ``<job>/algo-K-<epoch>`` of one log group (a
spot restart adds new streams). In a job of several hosts every line of host ``algo-K`` is
shown after ``[node K-1] `` (steplift's node rank: the hosts sorted, ``algo-1`` first).
"""

from __future__ import annotations

import json
import re
from typing import Any

from steplift.models import JobHandle, LogChunk

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
INSTANCE_COUNT = "instance_count"
"""Key of a multi-host job's host count in its handle's ``extra``."""
_STREAM_HOST = re.compile(r"^algo-(\d+)$")
_PAGES_PER_STREAM = 100  # bounded: 100 pages of up to 10,000 events per poll


def read_logs(logs: Any, handle: JobHandle, cursor: str | None) -> LogChunk:
    """The job's new lines since ``cursor`` (every stream followed by its forward token).

    ``logs`` is a boto3 CloudWatch Logs client. A one-host job's lines, even over the new
    streams of a spot restart, are left as they are.
    """
    tokens: dict[str, str] = json.loads(cursor) if cursor else {}
    try:
        streams = logs.describe_log_streams(
            logGroupName=LOG_GROUP, logStreamNamePrefix=f"{handle.job_id}/"
        ).get("logStreams", [])
    except logs.exceptions.ResourceNotFoundException:
        return LogChunk([], cursor)
    hosts = {name: _stream_host(name) for name in (s["logStreamName"] for s in streams)}
    names = sorted(hosts, key=lambda name: (_host_order(hosts[name]), name))
    several = int(handle.extra.get(INSTANCE_COUNT, "1")) > 1 or len(set(hosts.values())) > 1
    lines: list[str] = []
    for name in names:
        prefix = f"[{_node_label(hosts[name])}] " if several else ""
        for _ in range(_PAGES_PER_STREAM):
            request: dict[str, Any] = {
                "logGroupName": LOG_GROUP,
                "logStreamName": name,
                "startFromHead": True,
            }
            if name in tokens:
                request["nextToken"] = tokens[name]
            page = logs.get_log_events(**request)
            events = page.get("events", [])
            lines += [prefix + str(event["message"]).rstrip("\n") for event in events]
            token = page.get("nextForwardToken")
            unchanged = token == tokens.get(name)
            if token:
                tokens[name] = token
            if not events or unchanged:
                break
    return LogChunk(lines, json.dumps(tokens, sort_keys=True))


def _stream_host(stream: str) -> str:
    """The host of a stream ``<job>/<host>-<epoch>``."""
    return stream.split("/", 1)[-1].rsplit("-", 1)[0]


def _host_order(host: str) -> tuple[int, str]:
    match = _STREAM_HOST.match(host)
    return (int(match.group(1)), host) if match else (1 << 30, host)


def _node_label(host: str) -> str:
    """``node R`` for host ``algo-<R+1>``; any other host keeps its own name."""
    match = _STREAM_HOST.match(host)
    return f"node {int(match.group(1)) - 1}" if match else host
