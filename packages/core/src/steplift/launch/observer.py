"""What a launch reports while it runs: the :class:`LaunchObserver` callbacks."""

from __future__ import annotations

from steplift.models import JobHandle, JobStatus


class LaunchObserver:
    """Receives what happens during :meth:`StepOperator.launch`. Every method is optional."""

    def on_job(self, handle: JobHandle, adopted: bool) -> None:
        """A job was submitted (``adopted=False``) or an existing one adopted."""

    def on_status(self, status: JobStatus) -> None:
        """The job's status changed."""

    def on_log(self, line: str) -> None:
        """A new log line (without its newline)."""

    def on_warning(self, message: str) -> None:
        """Something went wrong that does not stop the step (e.g. a log read failed)."""
