"""Vertex AI job states and errors, normalised.

A CustomJob reports ``JOB_STATE_*`` and, when it failed, ``error`` (a ``google.rpc.Status``:
a numeric code and a message). The failure kind comes from both: RESOURCE_EXHAUSTED is quota
or capacity, a replica's non-zero exit is the user's code, and so on.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from steplift.models import JobStatus
from steplift.states import FailureKind, JobState

if TYPE_CHECKING:
    from google.cloud.aiplatform_v1 import CustomJob

STATE_NAMES: dict[int, str] = {
    0: "JOB_STATE_UNSPECIFIED",
    1: "JOB_STATE_QUEUED",
    2: "JOB_STATE_PENDING",
    3: "JOB_STATE_RUNNING",
    4: "JOB_STATE_SUCCEEDED",
    5: "JOB_STATE_FAILED",
    6: "JOB_STATE_CANCELLING",
    7: "JOB_STATE_CANCELLED",
    8: "JOB_STATE_PAUSED",
    9: "JOB_STATE_EXPIRED",
    10: "JOB_STATE_UPDATING",
    11: "JOB_STATE_PARTIALLY_SUCCEEDED",
}

_NORMALISED: dict[str, JobState] = {
    "JOB_STATE_UNSPECIFIED": JobState.PENDING,
    "JOB_STATE_QUEUED": JobState.PENDING,
    "JOB_STATE_PENDING": JobState.PENDING,
    "JOB_STATE_PAUSED": JobState.PENDING,
    "JOB_STATE_RUNNING": JobState.RUNNING,
    "JOB_STATE_UPDATING": JobState.RUNNING,
    "JOB_STATE_SUCCEEDED": JobState.SUCCEEDED,
    "JOB_STATE_FAILED": JobState.FAILED,
    "JOB_STATE_PARTIALLY_SUCCEEDED": JobState.FAILED,
    "JOB_STATE_EXPIRED": JobState.FAILED,
    "JOB_STATE_CANCELLING": JobState.CANCELLING,
    "JOB_STATE_CANCELLED": JobState.CANCELLED,
}

# google.rpc.Code numbers used below.
CODE_DEADLINE_EXCEEDED = 4
CODE_RESOURCE_EXHAUSTED = 8
CODE_UNAVAILABLE = 14

_EXIT_STATUS = re.compile(r"non-zero status of (-?[0-9]+)")


def failure_kind(code: int, message: str, exit_code: int | None) -> FailureKind:
    """Why a job failed, from its ``error.code`` and ``error.message``."""
    text = message.lower()
    if code == CODE_RESOURCE_EXHAUSTED or "resources are insufficient" in text:
        return FailureKind.QUOTA if "quota" in text else FailureKind.CAPACITY
    if "preempt" in text or "spot vm" in text:
        return FailureKind.PREEMPTED
    if code == CODE_DEADLINE_EXCEEDED or "timed out" in text or "timeout" in text:
        return FailureKind.TIMEOUT
    if "image" in text and ("pull" in text or "not found" in text or "does not exist" in text):
        return FailureKind.IMAGE
    if exit_code is not None:
        # 137 is a SIGKILL from outside (the OOM killer, a lost host), not a Python error.
        return FailureKind.INFRASTRUCTURE if exit_code in (137, -9) else FailureKind.USER_CODE
    return FailureKind.INFRASTRUCTURE


def status_from_state(state: str | int, error_code: int = 0, error_message: str = "") -> JobStatus:
    """The normalised status of a CustomJob from its state (name or number) and error."""
    name = STATE_NAMES.get(state, "JOB_STATE_UNSPECIFIED") if isinstance(state, int) else state
    normalised = _NORMALISED.get(name, JobState.PENDING)
    match = _EXIT_STATUS.search(error_message)
    exit_code = int(match.group(1)) if match else None
    kind = None
    if normalised is JobState.FAILED:
        if name == "JOB_STATE_EXPIRED":
            kind = FailureKind.CAPACITY
            error_message = error_message or "the job waited too long for resources and expired"
        else:
            kind = failure_kind(error_code, error_message, exit_code)
    return JobStatus(
        state=normalised,
        provider_state=name.removeprefix("JOB_STATE_"),
        message=error_message,
        failure_kind=kind,
        exit_code=exit_code,
    )


def status_from_job(job: CustomJob) -> JobStatus:
    """The normalised status of a CustomJob the SDK returned (``get`` or a ``list`` entry)."""
    error = job.error
    return status_from_state(int(job.state), int(error.code), str(error.message))
