"""`ApiError`: how Google APIs refuse a call, and how the emulator renders it.

Errors are ``{"error": {"code": <http>, "message": ..., "status": <rpc code name>}}`` with the
HTTP status that Google's REST gateway gives each ``google.rpc.Code``.
"""

from __future__ import annotations

from typing import Any

RPC_CODES = {
    "OK": 0,
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "OUT_OF_RANGE": 11,
    "UNIMPLEMENTED": 12,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "DATA_LOSS": 15,
    "UNAUTHENTICATED": 16,
}
"""``google.rpc.Code`` numbers by name (a failed job's ``error.code`` is one of them)."""

HTTP_FOR_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "PERMISSION_DENIED": 403,
    "UNAUTHENTICATED": 401,
    "RESOURCE_EXHAUSTED": 429,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNKNOWN": 500,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class ApiError(Exception):
    """An error the emulated service answers with (Google's JSON error shape)."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def http_code(self) -> int:
        """The HTTP status of this error."""
        return HTTP_FOR_STATUS.get(self.status, 500)

    def body(self) -> dict[str, Any]:
        """``{"error": {...}}`` as Google APIs send it."""
        return {"error": {"code": self.http_code, "message": self.message, "status": self.status}}


def status_line(code: int) -> str:
    """The WSGI status line of an HTTP status code (``"404 Not Found"``)."""
    return f"{code} {_REASONS.get(code, 'Error')}"


def not_found(path: str) -> ApiError:
    """The answer to a URL the service does not serve."""
    return ApiError("NOT_FOUND", f"The requested URL {path} was not found on this server.")


def unavailable() -> ApiError:
    """An injected 5xx fault."""
    return ApiError("UNAVAILABLE", "The service is currently unavailable.")
