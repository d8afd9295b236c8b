"""Reading a job's logs from its run history → :class:`~steplift.models.LogChunk`.

The run's details list its log files (``logFiles``: name → SAS URL). A job of one process
writes ``user_logs/std_log.txt``; a job of several processes (a PyTorch distribution) writes
one ``user_logs/std_log_process_<rank>.txt`` per process, read together with each line
prefixed ``[node R] `` when the job spans several nodes. Only whole lines are returned; the
cursor is the byte offset after them (one offset per rank for a distributed job, as JSON).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Protocol

from steplift.models import LogChunk

MAIN_LOG = "user_logs/std_log.txt"
PROCESS_LOG = re.compile(r"^user_logs/std_log_process_(\d+)\.txt$")
"""The log of one process (by global rank) of a distributed job."""


class LogSource(Protocol):
    """What the logs are read through (``clients.RunHistory``)."""

    def run_details(self, run_id: str) -> dict[str, Any]: ...

    def read_from(self, url: str, offset: int) -> bytes: ...


def read_job_logs(
    history: LogSource,
    job_id: str,
    cursor: str | None,
    layout: Callable[[], tuple[int, int]],
) -> LogChunk:
    """The lines a job logged after ``cursor``; ``layout`` gives (nodes, processes per node)
    of a distributed job, asked only when the job has per-process logs."""
    files: dict[str, Any] = history.run_details(job_id).get("logFiles") or {}
    processes = {
        int(match.group(1)): str(url)
        for name, url in files.items()
        if (match := PROCESS_LOG.match(name)) is not None
    }
    per_rank = cursor is not None and cursor.startswith("{")
    if not processes:
        if MAIN_LOG not in files:
            return LogChunk([], cursor)
        start = 0 if per_rank else int(cursor or 0)
        lines, offset = read_lines(history, str(files[MAIN_LOG]), start)
        return LogChunk(lines, str(offset))
    # A distributed job: one log per process; the cursor holds an offset per rank.
    offsets: dict[str, int] = json.loads(cursor) if cursor is not None and per_rank else {}
    nodes, per_node = layout()
    lines = []
    for rank in sorted(processes):
        new_lines, offsets[str(rank)] = read_lines(
            history, processes[rank], offsets.get(str(rank), 0)
        )
        prefix = f"[node {rank // per_node}] " if nodes > 1 else ""
        lines += [prefix + line for line in new_lines]
    return LogChunk(lines, json.dumps(offsets, sort_keys=True))


def read_lines(history: LogSource, url: str, offset: int) -> tuple[list[str], int]:
    """The whole lines of a log file after ``offset`` and the offset after them."""
    data = history.read_from(url, offset)
    complete = data.rfind(b"\n") + 1  # whole lines only; the rest comes next time
    return data[:complete].decode("utf-8", errors="replace").splitlines(), offset + complete
