"""The CLI's observer: job output on stdout as it comes, coloured state changes on stderr."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.markup import escape

from steplift.models import JobHandle, JobStatus
from steplift.operator import LaunchObserver

_COLOURS = {
    "PENDING": "cyan",
    "RUNNING": "blue",
    "SUCCEEDED": "green",
    "FAILED": "red",
    "CANCELLING": "yellow",
    "CANCELLED": "yellow",
}


class RichObserver(LaunchObserver):
    """Shows a launch in the terminal."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.started = time.monotonic()
        self._last: str | None = None

    def _elapsed(self) -> str:
        return f"{time.monotonic() - self.started:6.1f}s"

    def on_job(self, handle: JobHandle, adopted: bool) -> None:
        verb = "adopted existing" if adopted else "submitted"
        self.console.print(
            f"[bold]steplift[/] {verb} {handle.flavor} job [bold]{escape(handle.name)}[/]"
        )

    def on_status(self, status: JobStatus) -> None:
        if status.provider_state == self._last:
            return
        self._last = status.provider_state
        colour = _COLOURS.get(status.state.value, "white")
        detail = f" - {escape(status.message)}" if status.message else ""
        provider = (
            f" ({escape(status.provider_state)})"
            if status.provider_state != status.state.value
            else ""
        )
        self.console.print(
            f"[dim]{self._elapsed()}[/] [{colour}]{status.state.value}[/]{provider}{detail}"
        )

    def on_log(self, line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def on_warning(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/] {escape(message)}")
