"""Normalised job states and failure kinds shared by every flavor."""

from __future__ import annotations

from enum import Enum


class _StrEnum(str, Enum):  # noqa: UP042 - enum.StrEnum is 3.11+, the job side runs on 3.10
    """A string enum that prints as its value (``enum.StrEnum`` is 3.11+; the job side runs on
    Python 3.10 too)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class JobState(_StrEnum):
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


class FailureKind(_StrEnum):
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
