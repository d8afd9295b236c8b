"""Azure's error shape: :class:`ApiError` (status, code, message, inner code) and its body.

Azure ML and Key Vault answer errors as ``{"error": {"code", "message", "innerError":
{"code"}}}``; the run history reports a job's failure in the same shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    206: "Partial Content",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    409: "Conflict",
    416: "Range Not Satisfiable",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class ApiError(Exception):
    """An error answer in Azure's shape."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        inner: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.inner = inner
        self.headers = list(headers)

    def body(self) -> dict[str, Any]:
        """The answer's JSON body."""
        return error_body(self.code, str(self), self.inner)


def error_body(code: str, message: str, inner: str | None = None) -> dict[str, Any]:
    """Azure's error shape: {"error": {"code", "message", "innerError"}}."""
    error: dict[str, Any] = {"code": code, "message": message}
    if inner:
        error["innerError"] = {"code": inner}
    return {"error": error}


def invalid(message: str, inner: str = "ValidationError") -> ApiError:
    """A 400 ``UserError`` for a request the service refuses."""
    return ApiError(400, "UserError", message, inner)


def status_line(status: int) -> str:
    """``"404 Not Found"``."""
    return f"{status} {REASONS.get(status, 'Error')}"
