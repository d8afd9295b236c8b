"""SageMaker's training-job states -> steplift's ``JobStatus`` (and failure kinds).

A job has a primary ``TrainingJobStatus`` and a finer ``SecondaryStatus``; the secondary one
tells a job waiting for instances from one running the user's code, and ``FailureReason``
tells what kind of failure ended it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from steplift.models import JobStatus
from steplift.states import FailureKind, JobState

# SecondaryStatus values during which the job has not started the user's code yet.
_NOT_STARTED = {
    "Starting",
    "Pending",
    "LaunchingMLInstances",
    "PreparingTrainingStack",
    "Downloading",
    "DownloadingTrainingImage",
    "Interrupted",
    "Restarting",
}


def failure_kind(reason: str) -> FailureKind:
    """Classify a SageMaker FailureReason."""
    text = reason.lower()
    if "resourcelimitexceeded" in text or "service limit" in text:
        return FailureKind.QUOTA
    if "capacityerror" in text or "insufficientcapacity" in text or "insufficient capacity" in text:
        return FailureKind.CAPACITY
    if "spot" in text and "interrupt" in text:
        return FailureKind.PREEMPTED
    if "algorithmerror" in text:
        return FailureKind.USER_CODE
    if "cannotstartcontainer" in text or ("clienterror" in text and "image" in text):
        return FailureKind.IMAGE
    return FailureKind.INFRASTRUCTURE


def status_from_description(description: dict[str, Any]) -> JobStatus:
    """DescribeTrainingJob -> the normalised status."""
    primary = str(description["TrainingJobStatus"])
    secondary = str(description.get("SecondaryStatus", ""))
    provider_state = f"{primary}/{secondary}" if secondary else primary
    reason = str(description.get("FailureReason", ""))
    if primary == "InProgress":
        state = JobState.PENDING if secondary in _NOT_STARTED else JobState.RUNNING
        return JobStatus(state=state, provider_state=provider_state)
    if primary == "Completed":
        return JobStatus(state=JobState.SUCCEEDED, provider_state=provider_state)
    if primary == "Stopping":
        return JobStatus(state=JobState.CANCELLING, provider_state=provider_state)
    if primary == "Stopped":
        if secondary == "MaxRuntimeExceeded":
            return JobStatus(
                state=JobState.FAILED,
                provider_state=provider_state,
                message="MaxRuntimeInSeconds exceeded",
                failure_kind=FailureKind.TIMEOUT,
            )
        if secondary == "MaxWaitTimeExceeded":
            return JobStatus(
                state=JobState.FAILED,
                provider_state=provider_state,
                message="no spot capacity within MaxWaitTimeInSeconds",
                failure_kind=FailureKind.CAPACITY,
            )
        return JobStatus(state=JobState.CANCELLED, provider_state=provider_state, message=reason)
    return JobStatus(
        state=JobState.FAILED,
        provider_state=provider_state,
        message=reason,
        failure_kind=failure_kind(reason),
    )


def status_from_summary(summary: Mapping[str, Any]) -> JobStatus | None:
    """A ListTrainingJobs summary -> the status a describe would give, or None if it cannot
    tell as much: an ended job's describe adds FailureReason, and without SecondaryStatus a
    waiting job cannot be told from a running one. A completed job needs nothing more."""
    if summary.get("TrainingJobStatus") not in ("InProgress", "Stopping", "Completed"):
        return None
    if not summary.get("SecondaryStatus"):
        return None
    return status_from_description(dict(summary))
