"""Key Vault's secret store, served under ``/keyvault/{vault}/secrets/{name}[/{version}]``.

Secrets are added in-process (:meth:`Vault.add`, through
:meth:`AzureMLEmulator.add_secret`), never over HTTP, so the request log never holds a value.
A GET needs ``api-version`` and a bearer token whose audience is Key Vault (a token for the
workspace gets the 401 challenge a real vault answers with).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from typing import Any, TypeAlias

from steplift_azureml.emulator.errors import ApiError
from steplift_azureml.secrets import API_VERSION

Answer: TypeAlias = tuple[int, Any, list[tuple[str, str]]]

DEFAULT_VAULT = "steplift-kv"
SECRET_NAME = re.compile(r"^[A-Za-z0-9-]{1,127}$")
VAULT_NAME = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){2,23}$")
ROUTE = r"/keyvault/(?P<vault>[^/]+)/secrets/(?P<name>[^/]+)(?:/(?P<version>[^/]+))?/?"


class Vault:
    """Every emulated vault's secrets: (vault, name) → versions, oldest first."""

    def __init__(self) -> None:
        self._secrets: dict[tuple[str, str], list[tuple[str, str, int]]] = {}
        self._lock = threading.Lock()

    def add(self, name: str, value: str, *, vault: str = DEFAULT_VAULT) -> str:
        """Store a new version of secret ``name``; its reference (the version-less URI)."""
        if not SECRET_NAME.match(name):
            raise ValueError(f"{name!r} is not a Key Vault secret name (letters, digits, -)")
        if not VAULT_NAME.match(vault):
            raise ValueError(f"{vault!r} is not a Key Vault name")
        if not isinstance(value, str):
            raise TypeError("a secret's value is a string")
        version = uuid.uuid4().hex
        with self._lock:
            self._secrets.setdefault((vault.lower(), name.lower()), []).append(
                (version, value, int(time.time()))
            )
        return f"https://{vault.lower()}.vault.azure.net/secrets/{name}"

    def versions(self, name: str, *, vault: str = DEFAULT_VAULT) -> list[str]:
        """The versions of a secret, oldest first."""
        with self._lock:
            return [v[0] for v in self._secrets.get((vault.lower(), name.lower()), [])]

    def get_secret(
        self,
        vault: str,
        name: str,
        version: str | None,
        query: dict[str, str],
        headers: dict[str, str],
        *,
        challenge: str,
    ) -> Answer:
        """Key Vault's answer to ``GET /secrets/NAME[/VERSION]``; ``challenge`` is the
        authorization URL a 401 names (the emulator's tenant)."""
        if not query.get("api-version"):
            raise ApiError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for "
                f"all requests; this vault serves {API_VERSION}.",
            )
        audience = token_audience(headers.get("authorization", ""))
        if audience is None or not audience.rstrip("/").startswith("https://vault."):
            raise ApiError(
                401,
                "Unauthorized",
                "AKV10000: Request is missing a Bearer or PoP token for Key Vault.",
                headers=[
                    (
                        "WWW-Authenticate",
                        f'Bearer authorization="{challenge}", resource="https://vault.azure.net"',
                    )
                ],
            )
        with self._lock:
            versions = list(self._secrets.get((vault.lower(), name.lower()), []))
        if version is not None:
            versions = [entry for entry in versions if entry[0] == version.lower()]
        if not versions:
            shown = f"{name}/{version}" if version else name
            raise ApiError(
                404,
                "SecretNotFound",
                f"A secret with (name/id) {shown} was not found in this key vault.",
            )
        found, value, created = versions[-1]
        return (
            200,
            {
                "value": value,
                "id": f"https://{vault.lower()}.vault.azure.net/secrets/{name}/{found}",
                "attributes": {
                    "enabled": True,
                    "created": created,
                    "updated": created,
                    "recoveryLevel": "Recoverable+Purgeable",
                },
                "tags": {},
            },
            [],
        )


def token_audience(authorization: str) -> str | None:
    """The ``aud`` claim of a bearer token (emulator tokens are unsigned JWTs)."""
    if not authorization.startswith("Bearer "):
        return None
    parts = authorization[len("Bearer ") :].split(".")
    if len(parts) < 2:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, json.JSONDecodeError):
        return None
    audience = claims.get("aud") if isinstance(claims, dict) else None
    return audience if isinstance(audience, str) else None
