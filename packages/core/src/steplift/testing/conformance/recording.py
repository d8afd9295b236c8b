"""What the standard tests watch a launch with: a recording observer that can act when the
job runs or logs a line, and a bounded wait for the backend to catch up."""

from __future__ import annotations

import time
from collections.abc import Callable

from steplift.models import JobHandle, JobStatus
from steplift.operator import LaunchObserver
from steplift.states import JobState

__all__ = ["Recorder", "eventually"]


class Recorder(LaunchObserver):
    """Records every handle, state and log line of a launch; ``on_running`` is called once
    when the job first reports RUNNING, ``on_line[1]`` once when a line contains
    ``on_line[0]`` (each with the job's handle): where a test breaks or interrupts the job."""

    def __init__(
        self,
        on_running: Callable[[JobHandle], None] | None = None,
        on_line: tuple[str, Callable[[JobHandle], None]] | None = None,
    ) -> None:
        self.handles: list[tuple[JobHandle, bool]] = []
        self.states: list[JobState] = []
        self.lines: list[str] = []
        self.on_running = on_running
        self.on_line = on_line

    def on_job(self, handle: JobHandle, adopted: bool) -> None:
        self.handles.append((handle, adopted))

    def on_status(self, status: JobStatus) -> None:
        self.states.append(status.state)
        if status.state is JobState.RUNNING and self.on_running and self.handles:
            hook, self.on_running = self.on_running, None
            hook(self.handles[-1][0])

    def on_log(self, line: str) -> None:
        self.lines.append(line)
        if self.on_line and self.on_line[0] in line and self.handles:
            hook, self.on_line = self.on_line[1], None
            hook(self.handles[-1][0])

    @property
    def handle(self) -> JobHandle:
        """The handle of the last job submitted or adopted."""
        assert self.handles, "no job was submitted or adopted"
        return self.handles[-1][0]


def eventually(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Bounded real wait for a backend to catch up (used only after the launch returned)."""
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()
