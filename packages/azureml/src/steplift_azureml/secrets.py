"""Azure Key Vault secrets for the ``secrets`` field: references checked in the config, values
read inside the job by :class:`KeyVaultSecretResolver` (entry point ``steplift.secrets``).

A reference is a Key Vault secret URI, ``https://VAULT.vault.azure.net/secrets/NAME`` with an
optional ``/VERSION`` (sovereign clouds: ``vault.azure.cn``, ``vault.usgovcloudapi.net``).
The resolver reads it with Key Vault's REST API (``GET .../secrets/NAME[/VERSION]?api-version=
7.4``) and a token from the job's own identity, through azure-core and azure-identity; no
``azure-keyvault-secrets`` is needed.

Emulation: when the job's environment has ``STEPLIFT_AZUREML_KEYVAULT_ENDPOINT`` (the
emulator sets it on the jobs it runs), the request goes to ``ENDPOINT/VAULT/secrets/...``
instead of the vault's host. The reference itself is still a real Key Vault URI, so the
config's check is the same for real and emulated use; the override is https-only, and the
real Azure ML service never sets it.

Importing this module imports no Azure SDK.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlparse

API_VERSION = "7.4"
ENDPOINT_ENV = "STEPLIFT_AZUREML_KEYVAULT_ENDPOINT"
"""Base URL serving every vault as ``BASE/VAULT/secrets/...`` (set by the emulator only)."""
VAULT_SUFFIXES = ("vault.azure.net", "vault.azure.cn", "vault.usgovcloudapi.net")
# Vault: 3-24 letters, digits and single hyphens, starting with a letter and not ending with a
# hyphen. Secret: 1-127 letters, digits and hyphens. Version: 32 hex digits.
_VAULT = r"[A-Za-z](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){2,23}"
_SUFFIX = "|".join(re.escape(suffix) for suffix in VAULT_SUFFIXES)
_SECRET_URI = re.compile(
    rf"^https://(?P<vault>{_VAULT})\.(?P<suffix>{_SUFFIX})(?::443)?"
    r"/secrets/(?P<name>[A-Za-z0-9-]{1,127})(?:/(?P<version>[0-9A-Fa-f]{32}))?/?$",
    re.IGNORECASE,
)
REFERENCE_HINT = (
    "must be a Key Vault secret URI: https://VAULT.vault.azure.net/secrets/NAME[/VERSION] "
    "(VAULT 3-24 letters, digits or hyphens; NAME letters, digits or hyphens; VERSION 32 hex)"
)


@dataclass(frozen=True)
class SecretReference:
    """A parsed Key Vault secret URI."""

    vault: str
    suffix: str
    name: str
    version: str | None = None

    @property
    def vault_url(self) -> str:
        """``https://VAULT.SUFFIX``."""
        return f"https://{self.vault}.{self.suffix}"

    @property
    def scope(self) -> str:
        """The token scope Key Vault accepts in this cloud (``https://vault.azure.net/.default``)."""
        return f"https://{self.suffix}/.default"

    @property
    def uri(self) -> str:
        """The canonical reference."""
        tail = f"/{self.version}" if self.version else ""
        return f"{self.vault_url}/secrets/{self.name}{tail}"

    def request_url(self, endpoint: str | None = None) -> str:
        """The URL to GET: the vault's own, or ``ENDPOINT/VAULT/...`` when emulated."""
        base = self.vault_url if endpoint is None else f"{endpoint.rstrip('/')}/{self.vault}"
        tail = f"/{quote(self.version)}" if self.version else ""
        return f"{base}/secrets/{quote(self.name)}{tail}?api-version={API_VERSION}"


def parse_reference(reference: str) -> SecretReference:
    """Parse a Key Vault secret URI; ValueError (naming the reference, not a value) if not one."""
    match = _SECRET_URI.match(reference) if isinstance(reference, str) else None
    if not match:
        raise ValueError(f"{reference!r} {REFERENCE_HINT}")
    return SecretReference(
        vault=match.group("vault").lower(),
        suffix=match.group("suffix").lower(),
        name=match.group("name"),
        version=match.group("version").lower() if match.group("version") else None,
    )


def describe_bad_reference(reference: str) -> str:
    """Why ``reference`` is refused; it is quoted only when it looks like a URL (anything else
    may be the secret itself, pasted where its reference belongs)."""
    looks_like_url = re.fullmatch(r"https?://[^\s'\"]{1,300}", reference) is not None
    shown = f"{reference!r} " if looks_like_url else "the reference (not shown) "
    return shown + REFERENCE_HINT


def endpoint_override(environ: Any = None) -> str | None:
    """The emulator's Key Vault base URL from the environment, if set (https only)."""
    value = (os.environ if environ is None else environ).get(ENDPOINT_ENV)
    if not value:
        return None
    parsed = urlparse(value)
    if parsed.scheme != "https" or not parsed.hostname:
        raise ValueError(f"{ENDPOINT_ENV} must be an https:// URL, not {value!r}")
    return str(value).rstrip("/")


class SecretNotReadable(Exception):
    """Key Vault refused or failed to return a secret (the message carries no value)."""


class KeyVaultSecretResolver:
    """Reads Key Vault secrets inside the job (``steplift.secrets`` entry point ``azureml``).

    The credential is the job's: ``AzureMLOnBehalfOfCredential`` in a ``user_identity`` job
    (``OBO_ENDPOINT`` set), else ``DefaultAzureCredential`` (the compute's managed identity;
    ``DEFAULT_IDENTITY_CLIENT_ID`` picks a user-assigned one).
    """

    def __init__(self) -> None:
        self._credential: Any = None
        self._client: Any = None

    def handles(self, reference: str) -> bool:
        """True for a Key Vault secret URI."""
        return isinstance(reference, str) and _SECRET_URI.match(reference) is not None

    def resolve(self, reference: str) -> str:
        """The secret's current value (or the given version's)."""
        parsed = parse_reference(reference)
        from azure.core.rest import HttpRequest

        client = self._pipeline(parsed.scope)
        request = HttpRequest("GET", parsed.request_url(endpoint_override()))
        response = client.send_request(request)
        if response.status_code != 200:
            raise SecretNotReadable(
                f"Key Vault answered {response.status_code} {_error_code(response)} "
                f"for {parsed.uri}"
            )
        try:
            value = response.json()["value"]
        except (ValueError, KeyError, TypeError):
            raise SecretNotReadable(f"Key Vault's answer for {parsed.uri} has no value") from None
        if not isinstance(value, str):
            raise SecretNotReadable(f"Key Vault's answer for {parsed.uri} has no string value")
        return value

    def _pipeline(self, scope: str) -> Any:
        if self._client is not None and self._client[0] == scope:
            return self._client[1]
        from azure.core import PipelineClient
        from azure.core.pipeline.policies import (
            BearerTokenCredentialPolicy,
            HeadersPolicy,
            RetryPolicy,
            UserAgentPolicy,
        )

        if self._credential is None:
            self._credential = job_credential()
        # No HttpLoggingPolicy: nothing about the answer is logged.
        client: Any = PipelineClient(
            base_url="",
            policies=[
                HeadersPolicy(),
                UserAgentPolicy(base_user_agent="steplift-azureml/0.1.0"),
                RetryPolicy(retry_total=5, retry_backoff_factor=0.5, retry_backoff_max=30),
                BearerTokenCredentialPolicy(self._credential, scope),
            ],
        )
        self._client = (scope, client)
        return client


def job_credential() -> Any:
    """The identity the job runs as."""
    if os.environ.get("OBO_ENDPOINT"):
        from azure.ai.ml.identity import AzureMLOnBehalfOfCredential

        return AzureMLOnBehalfOfCredential()
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(
        managed_identity_client_id=os.environ.get("DEFAULT_IDENTITY_CLIENT_ID") or None,
        exclude_interactive_browser_credential=True,
    )


def _error_code(response: Any) -> str:
    try:
        error = response.json().get("error") or {}
        return str(error.get("code") or "")
    except (ValueError, AttributeError):
        return ""
