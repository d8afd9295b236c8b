"""The Azure Blob artifact store: ``azureblob://ACCOUNT/CONTAINER/PATH`` URIs.

Built with no arguments (the job's entrypoint opens it by URI scheme), it finds its
credentials in the environment: ``AZURE_STORAGE_CONNECTION_STRING`` when set (its account
must be the URI's; this is how jobs reach Azurite), otherwise the account's blob endpoint
``https://ACCOUNT.blob.<AZURE_STORAGE_SUFFIX or core.windows.net>`` with
``DefaultAzureCredential`` (inside Azure ML: the job's identity).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from typing import Any

from steplift.errors import ConfigError

SCHEME = "azureblob"
PARALLEL_BYTES = 8 * 1024 * 1024
"""Blobs this big move in several parallel blocks/ranges (as azure-storage-blob allows)."""
CONNECTION_STRING_ENV = "AZURE_STORAGE_CONNECTION_STRING"
STORAGE_SUFFIX_ENV = "AZURE_STORAGE_SUFFIX"
_URI = re.compile(r"^azureblob://([a-z0-9]{3,24})/([a-z0-9][a-z0-9-]{1,62})(?:/(.*))?$")


def parse_blob_uri(uri: str) -> tuple[str, str, str]:
    """Split ``azureblob://ACCOUNT/CONTAINER/PATH`` into account, container and blob path."""
    match = _URI.match(uri)
    if not match:
        raise ConfigError(
            "not an Azure Blob URI (azureblob://ACCOUNT/CONTAINER/PATH)", value=uri, has_value=True
        )
    return match.group(1), match.group(2), match.group(3) or ""


def _connection_string_account(connection_string: str) -> str | None:
    for part in connection_string.split(";"):
        key, _, value = part.partition("=")
        if key.strip().lower() == "accountname":
            return value.strip()
    return None


class AzureBlobArtifactStore:
    """Put, get, test and list blobs by ``azureblob://`` URI."""

    def __init__(
        self,
        connection_string: str | None = None,
        credential: Any = None,
        storage_suffix: str | None = None,
    ) -> None:
        self._connection_string = connection_string or os.environ.get(CONNECTION_STRING_ENV)
        self._credential = credential
        self._suffix = storage_suffix or os.environ.get(STORAGE_SUFFIX_ENV) or "core.windows.net"
        self._services: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _service(self, account: str) -> Any:
        with self._lock:
            service = self._services.get(account)
            if service is not None:
                return service
            from azure.storage.blob import BlobServiceClient

            if self._connection_string:
                named = _connection_string_account(self._connection_string)
                if named and named != account:
                    raise ConfigError(
                        f"{CONNECTION_STRING_ENV} is for storage account '{named}', not "
                        f"'{account}'",
                        value=account,
                        has_value=True,
                    )
                service = BlobServiceClient.from_connection_string(self._connection_string)
            else:
                credential = self._credential
                if credential is None:
                    from azure.identity import DefaultAzureCredential

                    credential = DefaultAzureCredential()
                service = BlobServiceClient(
                    f"https://{account}.blob.{self._suffix}", credential=credential
                )
            self._services[account] = service
            return service

    def _blob(self, uri: str) -> Any:
        account, container, path = parse_blob_uri(uri)
        if not path:
            raise ConfigError("a blob URI needs a path after the container", value=uri)
        return self._service(account).get_blob_client(container, path)

    def put(self, uri: str, data: bytes) -> None:
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

        blob = self._blob(uri)
        # Small: one Put Blob call. Large: blocks in parallel, then one Put Block List. Either
        # way readers see the old blob or the new one, never half.
        concurrency = 4 if len(data) >= PARALLEL_BYTES else 1
        try:
            blob.upload_blob(data, overwrite=True, max_concurrency=concurrency)
        except ResourceNotFoundError as error:
            if getattr(error, "error_code", None) != "ContainerNotFound":
                raise
            account, container, _ = parse_blob_uri(uri)
            # Another launcher may create it at the same moment: that is as good.
            with contextlib.suppress(ResourceExistsError):
                self._service(account).create_container(container)
            blob.upload_blob(data, overwrite=True, max_concurrency=concurrency)

    def get(self, uri: str) -> bytes:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            data: bytes = self._blob(uri).download_blob(max_concurrency=4).readall()
        except ResourceNotFoundError:
            raise FileNotFoundError(uri) from None
        return data

    def exists(self, uri: str) -> bool:
        return bool(self._blob(uri).exists())

    def list(self, prefix: str) -> list[str]:
        account, container, path = parse_blob_uri(prefix.rstrip("/"))
        folder = path.rstrip("/") + "/" if path else ""
        from azure.core.exceptions import ResourceNotFoundError

        client = self._service(account).get_container_client(container)
        base = f"{SCHEME}://{account}/{container}/"
        try:
            names = [blob.name for blob in client.list_blobs(name_starts_with=folder)]
        except ResourceNotFoundError:  # no container yet: nothing stored
            return []
        return sorted(base + name for name in names)
