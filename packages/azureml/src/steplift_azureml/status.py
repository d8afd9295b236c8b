"""Azure ML job states and run-history errors → :class:`~steplift.models.JobStatus`.

A job's status comes from ``jobs.get`` or an entry of the jobs list; why a job failed is only
in the run's history (``details.error``: ``{"error": {code, message, innerError}}``), so a
``Failed`` state alone maps to no status and the operator reads the error first.
"""

from __future__ import annotations

import re
from typing import Any

from steplift.models import JobStatus
from steplift.states import FailureKind, JobState

STATES: dict[str, JobState] = {
    "NotStarted": JobState.PENDING,
    "Queued": JobState.PENDING,
    "Preparing": JobState.PENDING,
    "Provisioning": JobState.PENDING,
    "Starting": JobState.PENDING,
    "Paused": JobState.PENDING,
    "Running": JobState.RUNNING,
    "Finalizing": JobState.RUNNING,
    "NotResponding": JobState.RUNNING,
    "CancelRequested": JobState.CANCELLING,
    "Completed": JobState.SUCCEEDED,
    "Failed": JobState.FAILED,
    "Canceled": JobState.CANCELLED,
}
EXIT_CODE = re.compile(r"exited with (?:status )?code (-?\d+)", re.IGNORECASE)


def failure_kind_of(error: dict[str, Any] | None) -> FailureKind:
    """The failure kind of a run-history ``error`` ({"error": {code, message, innerError}})."""
    body = (error or {}).get("error") or {}
    codes = [str(body.get("code") or "")]
    inner = body.get("innerError") or body.get("inner_error")
    while isinstance(inner, dict):
        codes.append(str(inner.get("code") or ""))
        inner = inner.get("innerError") or inner.get("inner_error")
    text = " ".join([*codes, str(body.get("message") or "")]).lower()
    if "quota" in text:
        return FailureKind.QUOTA
    if "allocationfailed" in text or "capacity" in text:
        return FailureKind.CAPACITY
    if "preempt" in text:
        return FailureKind.PREEMPTED
    if "imagepull" in text or "image pull" in text or "docker image" in text:
        return FailureKind.IMAGE
    if "timelimit" in text or "timeout" in text:
        return FailureKind.TIMEOUT
    if "userprocess" in text or "usererror" in text or EXIT_CODE.search(text):
        return FailureKind.USER_CODE
    return FailureKind.INFRASTRUCTURE


def provider_state_of(status: Any) -> str:
    """A job's status as Azure ML names it, from an SDK enum or the REST string."""
    return str(getattr(status, "value", status) or "NotStarted")


def status_from_state(provider_state: str) -> JobStatus | None:
    """The status of a job in ``provider_state``, or None for ``Failed``: why it failed is
    in the run's history, which only :meth:`AzureMLStepOperator.get_status` reads."""
    state = STATES.get(provider_state, JobState.PENDING)
    if state is JobState.FAILED:
        return None
    message = "the job is not responding" if provider_state == "NotResponding" else ""
    return JobStatus(state=state, provider_state=provider_state, message=message)


def status_from_entry(entry: dict[str, Any]) -> JobStatus | None:
    """The status a jobs-list entry (the REST resource) shows; None for a failed job."""
    properties = entry.get("properties") or {}
    return status_from_state(provider_state_of(properties.get("status")))


def status_from_failure(provider_state: str, error: dict[str, Any] | None) -> JobStatus:
    """The status of a failed job, from its run-history ``error``."""
    body = (error or {}).get("error") or {}
    message = str(body.get("message") or "the job failed")
    exit_match = EXIT_CODE.search(message)
    return JobStatus(
        state=JobState.FAILED,
        provider_state=provider_state,
        message=message,
        failure_kind=failure_kind_of(error),
        exit_code=int(exit_match.group(1)) if exit_match else None,
    )


def status_of_missing_job(job_id: str, workspace: str) -> JobStatus:
    """The status of a job the workspace does not have (404)."""
    return JobStatus(
        state=JobState.FAILED,
        provider_state="NotFound",
        message=f"Azure ML has no job {job_id} in workspace {workspace}",
        failure_kind=FailureKind.INFRASTRUCTURE,
    )
