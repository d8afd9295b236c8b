"""SageMaker's error shape, and how the emulator renders it.

An AWS JSON 1.1 error is a JSON body with ``__type`` and ``message`` (plus the
``x-amzn-ErrorType`` header), which botocore turns into ``ClientError`` codes and retries by
HTTP status.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from steplift.testing.emulation import FaultKind

JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
REASONS = {200: "OK", 400: "Bad Request", 500: "Internal Server Error", 503: "Service Unavailable"}

StartResponse = Callable[..., Any]


class ApiError(Exception):
    """An error answered the way the AWS service answers it."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def validation_error(message: str) -> ApiError:
    """The ValidationException every SageMaker input problem is reported as."""
    return ApiError("ValidationException", message)


def quota_error(instance_type: str) -> ApiError:
    """ResourceLimitExceeded worded as SageMaker words an exhausted instance quota."""
    return ApiError(
        "ResourceLimitExceeded",
        f"The account-level service limit '{instance_type} for training job usage' is 0 "
        "Instances, with current utilization of 0 Instances and a request delta of 1 Instances. "
        "Please use AWS Service Quotas to request an increase for this quota. If AWS Service "
        "Quotas is not available, contact AWS support to request an increase for this quota.",
    )


def fault_error(fault: FaultKind, number: int) -> ApiError:
    """The error an injected fault answers with; ``number`` counts the faults so far."""
    if fault == "throttle":
        return ApiError("ThrottlingException", "Rate exceeded", 400)
    # Alternate the two 5xx answers AWS gives, so clients meet both.
    if number % 2 == 0:
        return ApiError("InternalFailure", "An internal error has occurred.", 500)
    return ApiError("ServiceUnavailable", "Service is unavailable.", 503)


def respond_error(start_response: StartResponse, error: ApiError) -> Iterable[bytes]:
    """An error response botocore parses into `ClientError(code, message)`."""
    body = {"__type": error.code, "message": error.message}
    payload = json.dumps(body).encode()
    start_response(
        f"{error.status} {REASONS.get(error.status, 'Error')}",
        [
            ("Content-Type", JSON_CONTENT_TYPE),
            ("Content-Length", str(len(payload))),
            ("x-amzn-RequestId", str(uuid.uuid4())),
            ("x-amzn-ErrorType", error.code),
        ],
    )
    return [payload]
