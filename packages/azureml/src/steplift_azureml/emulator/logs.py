"""The run history's log files: where a job's processes write and how a client reads them.

A job of one process writes ``user_logs/std_log.txt``; with a PyTorch distribution each
process writes ``user_logs/std_log_process_<rank>.txt``, as Azure ML's common runtime names
them. The run's details list each file with a SAS-style URL served by
:func:`read_log_file`, which honours a ``Range`` header as blob storage does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import quote

from steplift_azureml.emulator.errors import ApiError

if TYPE_CHECKING:
    from steplift_azureml.emulator.jobs import EmulatedJob

Answer: TypeAlias = tuple[int, Any, list[tuple[str, str]]]

MAIN_LOG = "user_logs/std_log.txt"
PROCESS_LOG = "user_logs/std_log_process_{rank}.txt"
"""A distributed job's log of one process (global rank), as Azure ML's common runtime names it."""
ROUTE = r"/_logs/(?P<job>[^/]+)/(?P<file>.+)"
"""Where the emulator serves log files (the ``logFiles`` URLs of the run's details)."""


def log_file(distributed: bool, rank: int) -> str:
    """The log file of the process of global ``rank``."""
    return PROCESS_LOG.format(rank=rank) if distributed else MAIN_LOG


def log_file_urls(endpoint_url: str, job: EmulatedJob) -> dict[str, str]:
    """The run's ``logFiles``: each file's URL (a SAS-style query, as the service gives)."""
    with job.lock:
        files = sorted(job.logs)
    return {
        file: f"{endpoint_url}/_logs/{quote(job.name)}/{file}?sv=emulator&sig=x" for file in files
    }


def log_sink(job: EmulatedJob, file: str) -> Callable[[str], None]:
    """Append each line a process prints to ``file`` of its job."""

    def sink(line: str) -> None:
        job.append_log(file, line)

    return sink


def read_log_file(data: bytes | None, range_header: str) -> Answer:
    """The answer to a log file GET: the whole file, or the bytes a ``Range`` asks for."""
    if data is None:
        raise ApiError(404, "BlobNotFound", "The specified blob does not exist.")
    range_match = re.fullmatch(r"bytes=(\d+)-(\d*)", range_header.strip())
    if not range_match:
        return 200, data, [("Accept-Ranges", "bytes")]
    start = int(range_match.group(1))
    end = int(range_match.group(2)) if range_match.group(2) else len(data) - 1
    if start >= len(data):
        raise ApiError(
            416,
            "InvalidRange",
            "The range specified is invalid for the current size of the resource.",
            headers=[("Content-Range", f"bytes */{len(data)}")],
        )
    end = min(end, len(data) - 1)
    return 206, data[start : end + 1], [("Content-Range", f"bytes {start}-{end}/{len(data)}")]
