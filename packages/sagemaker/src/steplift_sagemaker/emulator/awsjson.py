"""The AWS JSON 1.1 wire protocol as SageMaker and CloudWatch Logs speak it.

Requests carry `X-Amz-Target: <prefix>.<Operation>` and a JSON body; errors are a JSON body with
`__type` and `message`, which botocore turns into `ClientError` codes (and retries by status).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from collections.abc import Callable, Iterable
from typing import Any

JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
INTERNAL_HEADER = "X-Steplift-Internal"
"""Marks the emulator's own calls to itself: never logged, never faulted."""
INTERNAL_ENVIRON_KEY = "HTTP_X_STEPLIFT_INTERNAL"

SERVICE_BY_TARGET_PREFIX = {"SageMaker": "sagemaker", "Logs_20140328": "logs"}

_REASONS = {200: "OK", 400: "Bad Request", 500: "Internal Server Error", 503: "Service Unavailable"}


class AwsError(Exception):
    """An error answered the way the AWS service answers it."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def validation_error(message: str) -> AwsError:
    """The ValidationException every SageMaker input problem is reported as."""
    return AwsError("ValidationException", message)


def read_body(environ: dict[str, Any]) -> bytes:
    """Read the whole request body and put it back so the next WSGI app can read it too."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body: bytes = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def parse_target(environ: dict[str, Any]) -> tuple[str, str] | None:
    """(service, operation) for a JSON-protocol call of a service we watch, else None."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    prefix, _, operation = target.partition(".")
    service = SERVICE_BY_TARGET_PREFIX.get(prefix)
    if service is None or not operation:
        return None
    return service, operation


def parse_params(body: bytes) -> dict[str, Any]:
    """The call's parameters; a malformed body is a SerializationException like AWS says."""
    try:
        params = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise AwsError("SerializationException", f"Malformed request body: {error}") from error
    if not isinstance(params, dict):
        raise AwsError("SerializationException", "Request body must be a JSON object")
    return params


def parse_timestamp(value: Any) -> float:
    """A JSON-protocol timestamp (epoch seconds, or ISO 8601 from other SDKs) as epoch."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as error:
            raise AwsError("SerializationException", f"Invalid timestamp: {value}") from error
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return parsed.timestamp()
    raise AwsError("SerializationException", f"Invalid timestamp: {value!r}")


StartResponse = Callable[..., Any]


def respond(start_response: StartResponse, status: int, body: Any) -> Iterable[bytes]:
    """A JSON-protocol response."""
    payload = json.dumps(body).encode()
    start_response(
        f"{status} {_REASONS.get(status, 'Error')}",
        [
            ("Content-Type", JSON_CONTENT_TYPE),
            ("Content-Length", str(len(payload))),
            ("x-amzn-RequestId", str(uuid.uuid4())),
        ],
    )
    return [payload]


def respond_error(start_response: StartResponse, error: AwsError) -> Iterable[bytes]:
    """An error response botocore parses into `ClientError(code, message)`."""
    body = {"__type": error.code, "message": error.message}
    payload = json.dumps(body).encode()
    start_response(
        f"{error.status} {_REASONS.get(error.status, 'Error')}",
        [
            ("Content-Type", JSON_CONTENT_TYPE),
            ("Content-Length", str(len(payload))),
            ("x-amzn-RequestId", str(uuid.uuid4())),
            ("x-amzn-ErrorType", error.code),
        ],
    )
    return [payload]
