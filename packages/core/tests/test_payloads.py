"""Payloads: formats, digests computed while transferring, streamed verification."""

from __future__ import annotations

import hashlib
import os

import pytest

from steplift.errors import IntegrityError
from steplift.payloads import PARALLEL_HASH_BYTES, read_payload, write_payload
from steplift.testing.memory import MemoryStore


@pytest.mark.parametrize("size", [0, 1000, PARALLEL_HASH_BYTES + 12_345])
def test_bytes_are_stored_as_they_are_and_verified(size: int) -> None:
    store = MemoryStore()
    data = os.urandom(size)
    ref = write_payload(store, "mem://a/output", data)
    assert ref.format == "bytes" and ref.uri == "mem://a/output.bin"
    assert store.blobs[ref.uri] == data
    assert ref.sha256 == hashlib.sha256(data).hexdigest()
    assert read_payload(store, ref) == data


def test_a_changed_blob_is_refused() -> None:
    store = MemoryStore()
    ref = write_payload(store, "mem://a/output", os.urandom(3_000_000))
    store.blobs[ref.uri] = store.blobs[ref.uri][:-1] + b"\0"
    with pytest.raises(IntegrityError, match="digest mismatch"):
        read_payload(store, ref)


def test_plain_data_stays_json_and_the_rest_is_pickled() -> None:
    store = MemoryStore()
    assert write_payload(store, "mem://j", {"a": [1, 2.5, None]}).format == "json"
    assert write_payload(store, "mem://p", bytearray(b"x")).format == "pickle"
    assert write_payload(store, "mem://t", (1, 2)).format == "pickle"
