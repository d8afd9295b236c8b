"""Building the Azure clients (credential, custom cloud, ``MLClient``, run history, the raw
jobs list) and reading what the SDK's errors say.

The Azure SDK is imported where a client is built, not when this module is: importing it
costs nothing until the operator first talks to Azure.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from steplift_azureml.config import AzureMLStepOperatorConfig

if TYPE_CHECKING:
    from azure.core import PipelineClient
    from azure.core.credentials import TokenCredential
    from azure.core.rest import HttpRequest

USER_AGENT = "steplift-azureml/0.1.0"
JOBS_API_VERSION = "2024-01-01-preview"
"""The jobs API version azure-ai-ml's ``jobs.get`` speaks: a list entry reads like a get."""
_PUBLIC_RESOURCE_MANAGER = "https://management.azure.com"
_TRANSIENT_HTTP = {408, 429, 500, 502, 503, 504}
_cloud_lock = threading.Lock()


def is_transient_error(error: Exception) -> bool:
    """Throttling, 5xx and lost connections (after azure-core's own retries)."""
    exceptions = sys.modules.get("azure.core.exceptions")
    if exceptions is None:
        return False
    if isinstance(error, exceptions.ServiceRequestError | exceptions.ServiceResponseError):
        return True
    if isinstance(error, exceptions.HttpResponseError):
        return (error.status_code or 0) in _TRANSIENT_HTTP
    return False


def error_body(error: Any) -> dict[str, Any]:
    """What an SDK ``HttpResponseError`` says, as the service's ``error`` object
    ({code, message, innerError}): the response's own when it is JSON."""
    inner = getattr(error, "error", None)
    code = getattr(inner, "code", None) or getattr(error, "error_code", None) or ""
    result: dict[str, Any] = {"code": code, "message": error_message(error)}
    inner_error = getattr(inner, "innererror", None) or getattr(inner, "inner_error", None)
    if isinstance(inner_error, dict):
        result["innerError"] = inner_error
    try:
        body = error.response.json()
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            result = body["error"]
    except Exception:  # not JSON: keep what the exception says
        pass
    return result


def error_message(error: Any) -> str:
    """The first line of an SDK error's message."""
    inner = getattr(error, "error", None)
    message = getattr(inner, "message", None) or getattr(error, "message", None) or str(error)
    return str(message).splitlines()[0]


def forget_inherited_cloud() -> None:
    """Drop an ``AZUREML_CURRENT_CLOUD`` naming a steplift custom cloud that this process did
    not register (inherited from the process that did, e.g. ``steplift status`` run from a
    script): azure-ai-ml reads it at import and refuses to import with an unknown cloud."""
    inherited = os.environ.get("AZUREML_CURRENT_CLOUD", "")
    if inherited.startswith("Steplift_") and "azure.ai.ml" not in sys.modules:
        del os.environ["AZUREML_CURRENT_CLOUD"]


def cloud_name_for(config: AzureMLStepOperatorConfig) -> str:
    """The SDK cloud name: the configured one, or one per custom endpoint.

    The SDK keeps clouds in a process-wide registry that refuses to redefine a name, so each
    endpoint gets its own name.
    """
    if not config.cloud_endpoint:
        return config.cloud
    parsed = urlparse(config.cloud_endpoint)
    return f"Steplift_{parsed.hostname}_{parsed.port or 443}".replace(".", "_")


def cloud_metadata_for(endpoint: str) -> dict[str, str]:
    """Custom-cloud metadata serving every endpoint the SDK needs from ``endpoint``."""
    base = endpoint.rstrip("/") + "/"
    return {
        "azure_portal": base,
        "resource_manager": base,
        "active_directory": base,
        "aml_resource_id": base,
        "storage_endpoint": "core.windows.net",
        "registry_discovery_endpoint": base,
    }


def resource_manager(config: AzureMLStepOperatorConfig) -> str:
    """The resource manager endpoint (no trailing slash)."""
    if config.cloud_endpoint:
        return config.cloud_endpoint.rstrip("/")
    if config.cloud == "AzureCloud":
        return _PUBLIC_RESOURCE_MANAGER
    forget_inherited_cloud()
    from azure.ai.ml._azure_environments import _get_cloud_details

    details: dict[str, str] = _get_cloud_details(config.cloud)
    return details["resource_manager"].rstrip("/")


def make_credential(config: AzureMLStepOperatorConfig) -> TokenCredential:
    """The credential the config names."""
    if config.credential == "managed_identity":
        from azure.identity import ManagedIdentityCredential

        return ManagedIdentityCredential(client_id=config.managed_identity_client_id)
    if config.credential == "azure_cli":
        from azure.identity import AzureCliCredential

        return AzureCliCredential()
    if config.credential == "environment":
        from azure.identity import EnvironmentCredential

        return EnvironmentCredential()
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(managed_identity_client_id=config.managed_identity_client_id)


def retry_kwargs(config: AzureMLStepOperatorConfig) -> dict[str, Any]:
    """azure-core RetryPolicy settings (it honours Retry-After on 429 and 503)."""
    return {
        "retry_total": config.retry_total,
        "retry_backoff_factor": config.retry_backoff,
        "retry_backoff_max": config.retry_backoff_max,
    }


def _quiet_experimental_notices() -> None:
    """azure-ai-ml logs a notice per experimental schema class it builds (six of them for a
    plain command job); keep them off the console unless the user configured that logger."""
    notices = logging.getLogger("azure.ai.ml._utils._experimental")
    if notices.level == logging.NOTSET:
        notices.setLevel(logging.ERROR)


def make_ml_client(
    config: AzureMLStepOperatorConfig, credential: TokenCredential, *, retries: bool = True
) -> Any:
    """An ``MLClient`` for the configured workspace and cloud.

    ``retries=False`` turns the transport retries off: the client that creates jobs must not
    repeat a PUT blindly (the operator checks ``find_job`` before creating again).
    """
    forget_inherited_cloud()
    from azure.ai.ml import MLClient

    _quiet_experimental_notices()
    kwargs: dict[str, Any] = {
        "enable_telemetry": False,
        "show_progress": False,
        "user_agent": USER_AGENT,
        **retry_kwargs(config),
    }
    if not retries:
        kwargs["retry_total"] = 0
    if config.cloud_endpoint:
        kwargs["cloud"] = cloud_name_for(config)
        kwargs["cloud_metadata"] = cloud_metadata_for(config.cloud_endpoint)
    elif config.cloud != "AzureCloud":
        kwargs["cloud"] = config.cloud
    # MLClient records the cloud in os.environ["AZUREML_CURRENT_CLOUD"] (the SDK's own
    # process-wide state, read by its fallbacks), so one process works with one cloud at a time.
    with _cloud_lock:
        return MLClient(
            credential,
            subscription_id=config.subscription_id,
            resource_group_name=config.resource_group,
            workspace_name=config.workspace,
            **kwargs,
        )


class RunHistory:
    """The workspace's run-history service: run details (status, error, log files) and logs.

    Its base URL comes from the workspace's discovery document; log files are read through
    their SAS URLs, without the bearer token.
    """

    def __init__(
        self,
        config: AzureMLStepOperatorConfig,
        credential: TokenCredential,
        ml_client: Any,
    ) -> None:
        from azure.core import PipelineClient
        from azure.core.pipeline.policies import (
            BearerTokenCredentialPolicy,
            HeadersPolicy,
            RetryPolicy,
            UserAgentPolicy,
        )

        self.config = config
        self.ml_client = ml_client
        scope = resource_manager(config) + "/.default"
        # One RetryPolicy per pipeline: a policy instance links to the next one in its pipeline.
        self._authed: PipelineClient[HttpRequest, Any] = PipelineClient(
            base_url="",
            policies=[
                HeadersPolicy(),
                UserAgentPolicy(base_user_agent=USER_AGENT),
                RetryPolicy(**retry_kwargs(config)),
                BearerTokenCredentialPolicy(credential, scope),
            ],
        )
        self._plain: PipelineClient[HttpRequest, Any] = PipelineClient(
            base_url="",
            policies=[
                HeadersPolicy(),
                UserAgentPolicy(base_user_agent=USER_AGENT),
                RetryPolicy(**retry_kwargs(config)),
            ],
        )
        self._history_base: str | None = None
        self._lock = threading.Lock()

    def _base(self) -> str:
        from azure.core.rest import HttpRequest

        with self._lock:
            if self._history_base is None:
                workspace = self.ml_client.workspaces.get(self.config.workspace)
                response = self._plain.send_request(HttpRequest("GET", workspace.discovery_url))
                response.raise_for_status()
                self._history_base = str(json.loads(response.text())["history"]).rstrip("/")
            return self._history_base

    def run_details(self, run_id: str) -> dict[str, Any]:
        """The run's details (``status``, ``error``, ``logFiles``)."""
        from azure.core.rest import HttpRequest

        config = self.config
        url = (
            f"{self._base()}/history/v1.0/subscriptions/{config.subscription_id}"
            f"/resourceGroups/{config.resource_group}/providers/"
            f"Microsoft.MachineLearningServices/workspaces/{config.workspace}"
            f"/runs/{run_id}/details"
        )
        response = self._authed.send_request(HttpRequest("GET", url))
        response.raise_for_status()
        details: dict[str, Any] = response.json()
        return details

    def read_from(self, url: str, offset: int) -> bytes:
        """The bytes of a log file from ``offset`` on (empty when there are none yet)."""
        from azure.core.rest import HttpRequest

        request = HttpRequest("GET", url, headers={"Range": f"bytes={offset}-"})
        response = self._plain.send_request(request)
        if response.status_code == 416:
            return b""
        response.raise_for_status()
        data = response.read()
        if response.status_code == 200:
            # The server ignored the range: skip what was already read.
            data = data[offset:]
        return bytes(data)


class JobsList:
    """The workspace's jobs list (``GET .../workspaces/{ws}/jobs``) read as raw JSON pages.

    azure-ai-ml's ``jobs.list`` turns every entry into a full ``Job`` entity (schemas,
    id resolution): several times the cost of reading the few fields a status needs.
    Errors are azure-core's, after the same transport retries as the ``MLClient``'s.
    """

    def __init__(self, config: AzureMLStepOperatorConfig, credential: TokenCredential) -> None:
        from azure.core import PipelineClient
        from azure.core.pipeline.policies import (
            BearerTokenCredentialPolicy,
            HeadersPolicy,
            RetryPolicy,
            UserAgentPolicy,
        )

        self.config = config
        base = resource_manager(config)
        self._client: PipelineClient[HttpRequest, Any] = PipelineClient(
            base_url="",
            policies=[
                HeadersPolicy(),
                UserAgentPolicy(base_user_agent=USER_AGENT),
                RetryPolicy(**retry_kwargs(config)),
                BearerTokenCredentialPolicy(credential, base + "/.default"),
            ],
        )
        self.url = (
            f"{base}/subscriptions/{config.subscription_id}/resourceGroups/"
            f"{config.resource_group}/providers/Microsoft.MachineLearningServices/workspaces/"
            f"{config.workspace}/jobs"
        )

    def pages(self, **filters: str) -> Iterator[list[dict[str, Any]]]:
        """The list's pages, one call each, following ``nextLink``; ``filters`` are the
        REST query parameters (``listViewType``, ``tag``, ``properties``, ``jobType``)."""
        from azure.core.rest import HttpRequest

        request = HttpRequest("GET", self.url, params={"api-version": JOBS_API_VERSION, **filters})
        while True:
            response = self._client.send_request(request)
            response.raise_for_status()
            body = response.json()
            entries = body.get("value") if isinstance(body, dict) else None
            yield [entry for entry in entries or [] if isinstance(entry, dict)]
            next_link = body.get("nextLink") if isinstance(body, dict) else None
            if not next_link:
                return
            request = HttpRequest("GET", str(next_link))
