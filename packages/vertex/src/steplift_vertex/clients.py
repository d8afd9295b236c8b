"""The Google clients an operator talks through, built on first use, and which errors are
worth asking again.

Vertex AI is reached through the low-level ``aiplatform_v1.JobServiceClient`` over REST and
Cloud Logging through a JSON session, with project, endpoint and credentials always explicit
(never a metadata-server probe). The Google SDK is imported only when a client is built.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from steplift.errors import StepFailed
from steplift.states import FailureKind
from steplift_vertex.config import VertexStepOperatorConfig

if TYPE_CHECKING:
    from google.api_core.retry import Retry
    from google.cloud.aiplatform_v1 import JobServiceClient

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


@dataclass(frozen=True)
class RetrySettings:
    """Transport retries (google.api_core) of reads and cancels: exponential, bounded."""

    initial: float = 1.0
    maximum: float = 30.0
    multiplier: float = 2.0
    timeout: float = 120.0


def is_transient_error(error: BaseException) -> bool:
    """429, 500, 502, 503, 504 and connection failures: worth asking again."""
    import requests
    from google.api_core import exceptions

    if isinstance(error, exceptions.RetryError):
        # The SDK's retries ran out on a transient error: still transient for the launch.
        return error.cause is not None and is_transient_error(error.cause)
    return isinstance(
        error,
        exceptions.TooManyRequests
        | exceptions.InternalServerError
        | exceptions.BadGateway
        | exceptions.ServiceUnavailable
        | exceptions.GatewayTimeout
        | requests.exceptions.ConnectionError
        | requests.exceptions.Timeout,
    )


def read_retry(settings: RetrySettings) -> Retry:
    """The google.api_core retry of reads and cancels: transient errors, within ``settings``."""
    from google.api_core.retry import Retry

    return Retry(
        predicate=is_transient_error,
        initial=settings.initial,
        maximum=settings.maximum,
        multiplier=settings.multiplier,
        timeout=settings.timeout,
    )


class JobNotCreated(StepFailed):
    """A create call that failed in a way worth trying again: 429, 5xx, a lost connection.

    The launch tries the create again, each time after ``find_job`` checked that the job did
    not appear anyway, for as long as its transient budget allows (slowing down as it polls);
    if it gives up, the step fails with this error: ``FailureKind.QUOTA`` for a 429
    (RESOURCE_EXHAUSTED), ``INFRASTRUCTURE`` otherwise, and provider state ``NOT_CREATED``.
    """

    def __init__(self, error: Exception) -> None:
        from google.api_core import exceptions

        quota = isinstance(error, exceptions.TooManyRequests)
        super().__init__(
            f"Vertex AI did not create the job: {error}",
            failure_kind=FailureKind.QUOTA if quota else FailureKind.INFRASTRUCTURE,
            provider_state="NOT_CREATED",
        )


def rpc_status(error: BaseException) -> str | None:
    """The ``error.status`` (google.rpc code name) of a REST error answer, if it has one."""
    response = getattr(error, "response", None)
    try:
        status = response.json()["error"]["status"] if response is not None else None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return str(status) if status else None


class VertexClients:
    """The JobServiceClient and the Cloud Logging session of one operator, built once.

    Building them imports the SDK and may read credentials: that happens under this object's
    own lock, which no launch waits on for anything else.
    """

    def __init__(self, config: VertexStepOperatorConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._jobs: JobServiceClient | None = None
        self._session: Any = None

    def credentials(self) -> Any:
        """Anonymous credentials for an emulator, else Application Default Credentials."""
        if self.config.credentials == "anonymous":
            from google.auth.credentials import AnonymousCredentials

            return AnonymousCredentials()  # type: ignore[no-untyped-call]
        import google.auth

        credentials, _ = google.auth.default(
            scopes=[CLOUD_PLATFORM_SCOPE], quota_project_id=self.config.project
        )
        return credentials

    @property
    def jobs(self) -> JobServiceClient:
        """The aiplatform_v1 JobServiceClient (REST), created on first use."""
        with self._lock:
            if self._jobs is None:
                from google.cloud.aiplatform_v1 import JobServiceClient

                self._jobs = JobServiceClient(
                    transport="rest",
                    credentials=self.credentials(),
                    client_options={"api_endpoint": self.config.vertex_endpoint},
                )
            return self._jobs

    def post_json(self, url: str, body: dict[str, Any], *, timeout: float) -> dict[str, Any]:
        """POST ``body`` as JSON, return the decoded answer (GoogleAPICallError on >= 400)."""
        with self._lock:
            if self._session is None:
                if self.config.credentials == "anonymous":
                    import requests

                    self._session = requests.Session()
                    self._session.trust_env = False
                else:
                    from google.auth.transport.requests import AuthorizedSession

                    self._session = AuthorizedSession(  # type: ignore[no-untyped-call]
                        self.credentials()
                    )
            session = self._session
        response = session.post(url, json=body, timeout=timeout)
        if response.status_code >= 400:
            from google.api_core import exceptions

            raise exceptions.from_http_response(response)  # type: ignore[no-untyped-call]
        answer: dict[str, Any] = response.json()
        return answer
