"""Emulated Secret Manager: the few routes a job needs to read a secret, and tests to make one.

    POST /v1/projects/{p}/secrets?secretId={s}         create a secret
    POST /v1/projects/{p}/secrets/{s}:addVersion       add a version ({"payload": {"data": b64}})
    GET  /v1/projects/{p}/secrets/{s}                  the secret's metadata
    GET  /v1/projects/{p}/secrets/{s}/versions/{v}:access   read a version (v: number or latest)

Values are kept in memory only. The request log records names, never a payload.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from steplift.testing.emulation import FaultKind
from steplift_vertex.emulator.errors import ApiError, not_found, unavailable
from steplift_vertex.emulator.validation import now_rfc3339

_SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
COLLECTION = re.compile(r"^/v1/projects/([^/:]+)/secrets$")
SECRET = re.compile(r"^/v1/projects/([^/:]+)/secrets/([^/:]+)$")
ADD_VERSION = re.compile(r"^/v1/projects/([^/:]+)/secrets/([^/:]+):addVersion$")
ACCESS = re.compile(r"^/v1/projects/([^/:]+)/secrets/([^/:]+)/versions/([^/:]+):access$")


class CallLog(Protocol):
    """What the secret routes need of their emulator: the request log and injected faults."""

    def record(self, service: str, operation: str, params: Mapping[str, Any]) -> None: ...

    def decide_fault(self, operation: str) -> FaultKind | None: ...


@dataclass
class _Secret:
    name: str
    create_time: str
    versions: list[bytes] = field(default_factory=list)

    def resource(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "replication": {"automatic": {}},
            "createTime": self.create_time,
        }


def _crc32c(data: bytes) -> str | None:
    try:
        import google_crc32c
    except ImportError:
        return None
    return str(int(google_crc32c.value(data)))


class SecretStore:
    """Secrets by ``projects/<p>/secrets/<s>``; versions are numbered from 1."""

    def __init__(self) -> None:
        self._secrets: dict[str, _Secret] = {}
        self._lock = threading.Lock()

    def create(self, project: str, secret_id: str) -> dict[str, Any]:
        """``secrets.create`` (ALREADY_EXISTS if there is one)."""
        if not _SECRET_ID.match(secret_id):
            raise ApiError(
                "INVALID_ARGUMENT",
                f"Invalid secret id {secret_id!r}: use 1-255 letters, digits, '_' or '-'.",
            )
        name = f"projects/{project}/secrets/{secret_id}"
        with self._lock:
            if name in self._secrets:
                raise ApiError("ALREADY_EXISTS", f"Secret [{name}] already exists.")
            secret = self._secrets[name] = _Secret(name, now_rfc3339())
            return secret.resource()

    def get(self, project: str, secret_id: str) -> dict[str, Any]:
        """``secrets.get``: the metadata, no value."""
        with self._lock:
            return self._require(project, secret_id).resource()

    def add_version(self, project: str, secret_id: str, data: bytes) -> dict[str, Any]:
        """``secrets.addVersion``: the new version's resource (its number is the count)."""
        with self._lock:
            secret = self._require(project, secret_id)
            secret.versions.append(bytes(data))
            return {
                "name": f"{secret.name}/versions/{len(secret.versions)}",
                "createTime": now_rfc3339(),
                "state": "ENABLED",
            }

    def access(self, project: str, secret_id: str, version: str) -> dict[str, Any]:
        """``secrets.versions.access``: the version's name and payload."""
        with self._lock:
            secret = self._require(project, secret_id)
            count = len(secret.versions)
            if version == "latest":
                number = count
            elif version.isdigit() and not version.startswith("0"):
                number = int(version)
            else:
                raise ApiError(
                    "INVALID_ARGUMENT", f"Invalid version {version!r}: a number or 'latest'."
                )
            if not 1 <= number <= count:
                raise ApiError(
                    "NOT_FOUND",
                    f"Secret Version [{secret.name}/versions/{version}] not found.",
                )
            data = secret.versions[number - 1]
        payload: dict[str, Any] = {"data": base64.b64encode(data).decode("ascii")}
        checksum = _crc32c(data)
        if checksum is not None:
            payload["dataCrc32c"] = checksum
        return {"name": f"{secret.name}/versions/{number}", "payload": payload}

    def put(self, project: str, secret_id: str, value: str | bytes) -> str:
        """Create the secret if needed and add ``value`` as its newest version; its name."""
        data = value.encode() if isinstance(value, str) else value
        try:
            self.create(project, secret_id)
        except ApiError as error:
            if error.status != "ALREADY_EXISTS":
                raise ValueError(error.message) from None
        return str(self.add_version(project, secret_id, data)["name"])

    def _require(self, project: str, secret_id: str) -> _Secret:
        name = f"projects/{project}/secrets/{secret_id}"
        secret = self._secrets.get(name)
        if secret is None:
            raise ApiError("NOT_FOUND", f"Secret [{name}] not found or has no versions.")
        return secret


def payload_data(body: dict[str, Any] | None) -> bytes:
    """The bytes of an addVersion body ``{"payload": {"data": base64}}``."""
    payload = (body or {}).get("payload")
    encoded = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(encoded, str):
        raise ApiError("INVALID_ARGUMENT", "payload.data is required (base64).")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError("INVALID_ARGUMENT", "payload.data is not valid base64.") from None


def is_secret_path(path: str) -> bool:
    """True for a Secret Manager URL (``/v1/projects/<p>/secrets...``)."""
    return path.startswith("/v1/projects/") and "/secrets" in path


def serve_secret_call(
    store: SecretStore,
    calls: CallLog,
    method: str,
    path: str,
    query: dict[str, list[str]],
    body: dict[str, Any] | None,
) -> tuple[int, Any]:
    """Answer one Secret Manager call; the request log gets the names, never a payload."""
    params = {
        "method": method,
        "path": path,
        "query": {key: values[-1] for key, values in query.items()},
    }
    match = None
    operation = None
    for pattern, verb, name in (
        (ACCESS, "GET", "AccessSecretVersion"),
        (ADD_VERSION, "POST", "AddSecretVersion"),
        (COLLECTION, "POST", "CreateSecret"),
        (SECRET, "GET", "GetSecret"),
    ):
        match = pattern.match(path)
        if match:
            if method != verb:
                raise ApiError("UNIMPLEMENTED", f"{method} is not supported on {path}")
            operation = name
            break
    if match is None or operation is None:
        raise not_found(path)
    calls.record("secretmanager", operation, params)
    project = match.group(1)
    if operation == "AccessSecretVersion":
        fault = calls.decide_fault(operation)
        if fault == "throttle":
            raise ApiError(
                "RESOURCE_EXHAUSTED",
                "Quota exceeded for quota metric 'Access requests' of service "
                "'secretmanager.googleapis.com'.",
            )
        if fault == "error":
            raise unavailable()
        return 200, store.access(project, match.group(2), match.group(3))
    if operation == "AddSecretVersion":
        return 200, store.add_version(project, match.group(2), payload_data(body))
    if operation == "CreateSecret":
        secret_id = query.get("secretId", [""])[-1]
        if not secret_id:
            raise ApiError("INVALID_ARGUMENT", "secretId is required.")
        return 200, store.create(project, secret_id)
    return 200, store.get(project, match.group(2))
