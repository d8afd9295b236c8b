"""Vertex job states and errors, normalised; which transport errors are retried."""

from __future__ import annotations

import pytest
import requests
from google.api_core import exceptions

from steplift.states import FailureKind, JobState
from steplift_vertex.clients import is_transient_error
from steplift_vertex.status import status_from_state


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (1, JobState.PENDING),
        ("JOB_STATE_PENDING", JobState.PENDING),
        (3, JobState.RUNNING),
        (10, JobState.RUNNING),
        (4, JobState.SUCCEEDED),
        (6, JobState.CANCELLING),
        (7, JobState.CANCELLED),
        (0, JobState.PENDING),
    ],
)
def test_states_are_normalised(state: int | str, expected: JobState) -> None:
    status = status_from_state(state)
    assert status.state is expected and status.failure_kind is None


@pytest.mark.parametrize(
    ("code", "message", "kind", "exit_code"),
    [
        (8, "The following quota metrics exceed quota limits: gpus", FailureKind.QUOTA, None),
        (8, "Resources are insufficient in region: us-central1", FailureKind.CAPACITY, None),
        (14, "The Spot VM of replica workerpool0-0 was preempted.", FailureKind.PREEMPTED, None),
        (4, "The job ran past its timeout of 60s", FailureKind.TIMEOUT, None),
        (3, "Unable to pull image us-docker.pkg.dev/x/y: not found", FailureKind.IMAGE, None),
        (
            3,
            "The replica workerpool0-0 exited with a non-zero status of 1.",
            FailureKind.USER_CODE,
            1,
        ),
        (
            3,
            "The replica workerpool0-0 exited with a non-zero status of 137.",
            FailureKind.INFRASTRUCTURE,
            137,
        ),
        (13, "Internal error occurred for the current attempt.", FailureKind.INFRASTRUCTURE, None),
    ],
)
def test_errors_map_to_failure_kinds(
    code: int, message: str, kind: FailureKind, exit_code: int | None
) -> None:
    status = status_from_state(5, code, message)
    assert status.state is JobState.FAILED and status.provider_state == "FAILED"
    assert status.failure_kind is kind and status.exit_code == exit_code
    assert status.message == message


def test_an_expired_job_lacked_capacity() -> None:
    status = status_from_state("JOB_STATE_EXPIRED")
    assert status.state is JobState.FAILED and status.failure_kind is FailureKind.CAPACITY


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (exceptions.TooManyRequests("slow down"), True),
        (exceptions.ServiceUnavailable("later"), True),
        (exceptions.InternalServerError("oops"), True),
        (exceptions.GatewayTimeout("slow"), True),
        (requests.exceptions.ConnectionError("refused"), True),
        (exceptions.BadRequest("no"), False),
        (exceptions.NotFound("gone"), False),
        (exceptions.PermissionDenied("nope"), False),
    ],
)
def test_only_transient_errors_are_retried(error: Exception, transient: bool) -> None:
    assert is_transient_error(error) is transient


def test_get_status_retries_connection_errors_then_gives_up() -> None:
    from steplift.models import JobHandle
    from steplift.registry import get_flavor
    from steplift.testing.emulation import free_port
    from steplift_vertex.clients import RetrySettings
    from steplift_vertex.operator import VertexStepOperator

    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    flavor = get_flavor("vertex")
    config = flavor.validate_config(
        {
            "project": "my-project",
            "image": "i",
            "staging_bucket": "gs://bkt/x",
            "api_endpoint": endpoint,
            "credentials": "anonymous",
        }
    )
    operator = flavor.create(config)
    assert isinstance(operator, VertexStepOperator)
    operator.transport_retry = RetrySettings(initial=0.01, maximum=0.02, timeout=0.3)
    handle = JobHandle(
        flavor="vertex", job_id="projects/my-project/locations/us-central1/customJobs/1", name="x"
    )
    with pytest.raises(exceptions.RetryError) as caught:
        operator.get_status(handle)
    assert isinstance(caught.value.cause, requests.exceptions.ConnectionError)
