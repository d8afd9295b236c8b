"""Payloads: step inputs and results as bytes with a SHA-256 digest.

Plain data (None, bool, int, float, str, lists and str-keyed dicts of them) is stored as JSON,
readable by anyone; ``bytes`` as they are (``.bin``: no copy, no pickling, the fast path for
large blobs); every other Python object goes through cloudpickle. Nothing is unpickled or
returned before its digest has been checked against the one recorded when it was written.

Large payloads are hashed while they move up: a thread computes the SHA-256 while the store
uploads (hashlib releases the GIL). On the way down the digest is checked once the bytes are
in: each store downloads in the way its SDK does fastest (measured in BENCHMARKS.md).
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from steplift.errors import IntegrityError
from steplift.store import ArtifactStore

Format = Literal["json", "pickle", "bytes"]
SUFFIXES: dict[str, str] = {"json": "json", "pickle": "pkl", "bytes": "bin"}
PARALLEL_HASH_BYTES = 8 * 1024 * 1024
"""Payloads this big are hashed in a thread while they are transferred."""


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
    """Encode ``value`` as JSON when that round-trips exactly, bytes as they are, else with
    cloudpickle."""
    if type(value) is bytes:
        return value, "bytes"
    if _is_plain(value):
        return json.dumps(value, sort_keys=True).encode(), "json"
    import cloudpickle

    return cloudpickle.dumps(value), "pickle"


def decode(data: bytes, fmt: Format) -> Any:
    """Decode bytes written by :func:`encode`. Only call after the digest was verified."""
    if fmt == "json":
        return json.loads(data)
    if fmt == "bytes":
        return data
    import pickle

    return pickle.loads(data)


def _in_thread(work: Callable[[], str]) -> Callable[[], str]:
    """Start ``work`` in a thread; the returned call waits for its result."""
    result: list[str] = []
    thread = threading.Thread(target=lambda: result.append(work()), daemon=True)
    thread.start()

    def wait() -> str:
        thread.join()
        return result[0]

    return wait


def write_payload(store: ArtifactStore, uri_stem: str, value: Any) -> PayloadRef:
    """Encode ``value`` and store it beside ``uri_stem`` (suffix by format)."""
    data, fmt = encode(value)
    uri = f"{uri_stem}.{SUFFIXES[fmt]}"
    if len(data) < PARALLEL_HASH_BYTES:
        store.put(uri, data)
        return PayloadRef(uri=uri, format=fmt, sha256=sha256_hex(data))
    digest = _in_thread(lambda: sha256_hex(data))
    store.put(uri, data)
    return PayloadRef(uri=uri, format=fmt, sha256=digest())


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
