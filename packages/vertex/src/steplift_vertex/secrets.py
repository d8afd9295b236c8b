"""Reads ``secrets`` inside a Vertex AI job from Google Cloud Secret Manager.

The operator puts only references (``projects/<p>/secrets/<name>/versions/<n|latest>``) into
the job; the entrypoint asks :class:`GCPSecretResolver` (entry point group
``steplift.secrets``) for each value just before the step runs. The value is fetched with
``GET {endpoint}/v1/{name}:access`` and never logged: errors name the reference, the HTTP
status and the service's message, nothing of the payload.

The endpoint comes from ``STEPLIFT_GCP_SECRETS_ENDPOINT`` (default Secret Manager's public
endpoint); ``STEPLIFT_GCP_SECRETS_CREDENTIALS=anonymous`` (set for emulators) sends no
credentials, otherwise Application Default Credentials (the job's service account) are used.
"""

from __future__ import annotations

import base64
import binascii
import os
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from steplift_vertex.config import DEFAULT_SECRETS_ENDPOINT, SECRET_VERSION

ENDPOINT_ENV = "STEPLIFT_GCP_SECRETS_ENDPOINT"
CREDENTIALS_ENV = "STEPLIFT_GCP_SECRETS_CREDENTIALS"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_TRANSIENT = frozenset({429, 500, 502, 503, 504})


class SecretAccessError(RuntimeError):
    """A secret could not be read; the message names the reference, never a value."""


class GCPSecretResolver:
    """Resolves Secret Manager secret version names to their (UTF-8) values."""

    attempts = 5
    """Tries per secret when Secret Manager throttles, answers 5xx or cannot be reached."""
    timeout = 30.0
    """Seconds one HTTP call may take."""

    def __init__(
        self,
        endpoint: str | None = None,
        anonymous: bool | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.endpoint = (
            endpoint or os.environ.get(ENDPOINT_ENV) or DEFAULT_SECRETS_ENDPOINT
        ).rstrip("/")
        if anonymous is None:
            anonymous = os.environ.get(CREDENTIALS_ENV, "").lower() == "anonymous"
        self.anonymous = anonymous
        self._sleep = sleep
        self._session: Any = None

    def handles(self, reference: str) -> bool:
        """True for a Secret Manager secret version name."""
        return bool(SECRET_VERSION.match(reference))

    def resolve(self, reference: str) -> str:
        """The value of the secret version ``reference`` (SecretAccessError if unreadable)."""
        if not self.handles(reference):
            raise SecretAccessError(f"{reference!r} is not a Secret Manager secret version name")
        answer = self._access(reference)
        payload = answer.get("payload") if isinstance(answer, dict) else None
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), str):
            raise SecretAccessError(f"Secret Manager answered without a payload for {reference}")
        try:
            data = base64.b64decode(payload["data"], validate=True)
        except (binascii.Error, ValueError):
            raise SecretAccessError(
                f"Secret Manager sent a payload for {reference} that is not base64"
            ) from None
        _check_crc32c(reference, data, payload.get("dataCrc32c"))
        try:
            value = data.decode("utf-8")
        except UnicodeDecodeError:
            raise SecretAccessError(
                f"the secret {reference} is not UTF-8 text; it cannot be an environment variable"
            ) from None
        if "\x00" in value:
            raise SecretAccessError(
                f"the secret {reference} contains a NUL character; it cannot be an environment "
                "variable"
            )
        return value

    # -- HTTP ----------------------------------------------------------------------------------

    def _session_for_calls(self) -> Any:
        if self._session is None:
            if self.anonymous:
                import requests

                session = requests.Session()
                session.trust_env = False  # an emulator on 127.0.0.1: no proxy
                self._session = session
            else:
                import google.auth
                from google.auth.transport.requests import AuthorizedSession

                credentials, _ = google.auth.default(scopes=[SCOPE])
                self._session = AuthorizedSession(credentials)  # type: ignore[no-untyped-call]
        return self._session

    def _access(self, reference: str) -> Any:
        import requests

        url = f"{self.endpoint}/v1/{quote(reference, safe='/')}:access"
        delay = 0.5
        problem = ""
        for attempt in range(self.attempts):
            if attempt:
                self._sleep(delay)
                delay = min(delay * 2, 8.0)
            try:
                response = self._session_for_calls().get(url, timeout=self.timeout)
            except requests.RequestException as error:
                problem = f"cannot reach {self.endpoint}: {type(error).__name__}"
                continue
            if response.status_code in _TRANSIENT:
                problem = _describe(response)
                continue
            if response.status_code >= 400:
                raise SecretAccessError(f"cannot read {reference}: {_describe(response)}")
            try:
                return response.json()
            except ValueError:
                raise SecretAccessError(
                    f"Secret Manager's answer for {reference} is not JSON"
                ) from None
        raise SecretAccessError(f"cannot read {reference} after {self.attempts} tries: {problem}")


def _describe(response: Any) -> str:
    """``HTTP 404 NOT_FOUND: <the service's message>`` of an error answer (no payload in it)."""
    status, message = "", ""
    try:
        error = response.json()["error"]
        status, message = str(error.get("status", "")), str(error.get("message", ""))
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    text = f"HTTP {response.status_code}" + (f" {status}" if status else "")
    return text + (f": {message[:300]}" if message else "")


def _check_crc32c(reference: str, data: bytes, expected: Any) -> None:
    if expected is None:
        return
    try:
        import google_crc32c
    except ImportError:  # the checksum is optional; the value still arrived over TLS
        return
    try:
        matches = int(google_crc32c.value(data)) == int(expected)
    except (TypeError, ValueError):
        matches = False
    if not matches:
        raise SecretAccessError(f"the payload of {reference} failed its CRC32C check")
