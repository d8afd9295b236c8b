"""Normalised job states and failure kinds shared by every flavor."""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    """The provider-independent state of a job."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        """True once the job can no longer change state."""
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class FailureKind(StrEnum):
    """Why a job failed, as far as the provider tells.

    The kind decides what a retry policy may do: user code is not worth retrying,
    a preempted or capacity-starved job usually is.
    """

    QUOTA = "quota"
    CAPACITY = "capacity"
    PREEMPTED = "preempted"
    IMAGE = "image"
    USER_CODE = "user_code"
    TIMEOUT = "timeout"
    INFRASTRUCTURE = "infrastructure"

    @property
    def is_transient(self) -> bool:
        """True for failures that a new attempt may well not meet again."""
        return self in (FailureKind.PREEMPTED, FailureKind.CAPACITY, FailureKind.INFRASTRUCTURE)
