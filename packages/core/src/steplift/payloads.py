"""Payloads: step inputs and results as bytes with a SHA-256 digest.

Plain data (None, bool, int, float, str, lists and str-keyed dicts of them) is stored as JSON,
readable by anyone; every other Python object goes through cloudpickle. Nothing is unpickled
before its digest has been checked against the one recorded when it was written.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from steplift.errors import IntegrityError
from steplift.store import ArtifactStore

Format = Literal["json", "pickle"]


class PayloadRef(BaseModel):
    """Where a payload is stored, how it is encoded and its digest."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    uri: str
    format: Format
    sha256: str


def sha256_hex(data: bytes) -> str:
    """The hex SHA-256 digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _is_plain(value: Any) -> bool:
    if value is None or isinstance(value, bool | str):
        return True
    if isinstance(value, int):
        return type(value) is int
    if isinstance(value, float):
        return type(value) is float and math.isfinite(value)
    if type(value) is list:
        return all(_is_plain(item) for item in value)
    if type(value) is dict:
        return all(isinstance(key, str) and _is_plain(item) for key, item in value.items())
    return False


def encode(value: Any) -> tuple[bytes, Format]:
    """Encode ``value`` as JSON when that round-trips exactly, else with cloudpickle."""
    if _is_plain(value):
        return json.dumps(value, sort_keys=True).encode(), "json"
    import cloudpickle

    return cloudpickle.dumps(value), "pickle"


def decode(data: bytes, fmt: Format) -> Any:
    """Decode bytes written by :func:`encode`. Only call after the digest was verified."""
    if fmt == "json":
        return json.loads(data)
    import pickle

    return pickle.loads(data)


def write_payload(store: ArtifactStore, uri_stem: str, value: Any) -> PayloadRef:
    """Encode ``value`` and store it beside ``uri_stem`` (suffix by format)."""
    data, fmt = encode(value)
    uri = f"{uri_stem}.{'json' if fmt == 'json' else 'pkl'}"
    store.put(uri, data)
    return PayloadRef(uri=uri, format=fmt, sha256=sha256_hex(data))


def read_verified(store: ArtifactStore, uri: str, expected_sha256: str) -> bytes:
    """Read the bytes at ``uri``; IntegrityError unless they match ``expected_sha256``."""
    data = store.get(uri)
    actual = sha256_hex(data)
    if actual != expected_sha256:
        raise IntegrityError(
            f"{uri}: SHA-256 digest mismatch (expected {expected_sha256}, found {actual}); "
            "the payload was changed after it was written and will not be loaded"
        )
    return data


def read_payload(store: ArtifactStore, ref: PayloadRef) -> Any:
    """Verify and decode a payload."""
    return decode(read_verified(store, ref.uri, ref.sha256), ref.format)
