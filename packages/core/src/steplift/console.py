"""A plain observer for the SDK: job output to stdout, state changes to stderr."""

from __future__ import annotations

import sys
from typing import TextIO

from steplift.models import JobHandle, JobStatus
from steplift.operator import LaunchObserver


class ConsoleObserver(LaunchObserver):
    """Streams a job's log lines as they arrive and says when its state changes."""

    def __init__(self, prefix: str = "", out: TextIO | None = None, err: TextIO | None = None):
        self.prefix = prefix
        self.out = out
        self.err = err
        self._last_state: str | None = None

    def _say(self, text: str) -> None:
        print(f"[steplift] {self.prefix}{text}", file=self.err or sys.stderr, flush=True)

    def on_job(self, handle: JobHandle, adopted: bool) -> None:
        verb = "adopted existing" if adopted else "submitted"
        self._say(f"{verb} {handle.flavor} job {handle.name}")

    def on_status(self, status: JobStatus) -> None:
        if status.state.value == self._last_state:
            return
        self._last_state = status.state.value
        detail = f" ({status.message})" if status.message else ""
        self._say(f"{status.state.value.lower()}{detail}")

    def on_log(self, line: str) -> None:
        print(line, file=self.out or sys.stdout, flush=True)

    def on_warning(self, message: str) -> None:
        self._say(f"warning: {message}")
