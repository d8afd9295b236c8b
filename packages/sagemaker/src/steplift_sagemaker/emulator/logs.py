"""The emulator's CloudWatch Logs: where a job's output lines go.

moto serves the CloudWatch Logs API (the operator reads it as it would AWS's); the emulator
writes each host's lines to stream ``<job>/algo-K-<epoch>`` of SageMaker's log group, and
narrows what moto answers where moto ignores a filter (:func:`keep_stream_prefix`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

logger = logging.getLogger(__name__)

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
_MAX_EVENT_CHARS = 256 * 1024 - 26  # CloudWatch's event size limit, less its per-event overhead
_MAX_BATCH = 1000
_FLUSH_INTERVAL = 0.05


def keep_stream_prefix(answer: dict[str, Any], prefix: str) -> dict[str, Any]:
    """A FilterLogEvents answer narrowed to the streams whose names start with ``prefix``.

    moto 5.2.1 ignores ``logStreamNamePrefix`` and answers every stream's events, so a reader
    of one job would get every job's lines. Its ``nextToken`` names the last event of the
    page, whichever stream it is in, so dropping events keeps the paging valid (a page may
    come back short or empty with a token, as CloudWatch's own pages may).
    """
    narrowed = dict(answer)
    narrowed["events"] = [
        event
        for event in answer.get("events") or []
        if str(event.get("logStreamName", "")).startswith(prefix)
    ]
    if "searchedLogStreams" in answer:
        narrowed["searchedLogStreams"] = [
            stream
            for stream in answer["searchedLogStreams"]
            if str(stream.get("logStreamName", "")).startswith(prefix)
        ]
    return narrowed


class LogStreamWriter:
    """Ships a job's output lines to one CloudWatch log stream, in batches every 50 ms."""

    def __init__(self, client: CloudWatchLogsClient, stream: str, group: str = LOG_GROUP) -> None:
        self.client = client
        self.group = group
        self.stream = stream
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._ensure_stream()
        self._thread = threading.Thread(target=self._run, name=f"logs-{stream}", daemon=True)
        self._thread.start()

    def _ensure_stream(self) -> None:
        exists = self.client.exceptions.ResourceAlreadyExistsException
        with contextlib.suppress(exists):
            self.client.create_log_group(logGroupName=self.group)
        with contextlib.suppress(exists):
            self.client.create_log_stream(logGroupName=self.group, logStreamName=self.stream)

    def write(self, line: str) -> None:
        """Queue one output line (timestamped now). An empty line is dropped, as the container's
        log driver drops it: CloudWatch refuses an empty message, and would refuse its batch."""
        if not line:
            return
        event = {"timestamp": int(time.time() * 1000), "message": line[:_MAX_EVENT_CHARS]}
        with self._lock:
            self._pending.append(event)

    def close(self) -> None:
        """Send what is left and stop the shipping thread."""
        self._closing.set()
        self._thread.join(10.0)

    def _run(self) -> None:
        while True:
            closing = self._closing.wait(_FLUSH_INTERVAL)
            self._flush()
            if closing:
                return

    def _flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for start in range(0, len(pending), _MAX_BATCH):
            try:
                self.client.put_log_events(
                    logGroupName=self.group,
                    logStreamName=self.stream,
                    logEvents=pending[start : start + _MAX_BATCH],  # type: ignore[arg-type]
                )
            except Exception:  # losing log lines must not break the job
                logger.exception("could not ship log lines to %s", self.stream)
