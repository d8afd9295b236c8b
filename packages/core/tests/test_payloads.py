"""Payloads: formats, digests computed while transferring, streamed verification."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest

from steplift.errors import IntegrityError
from steplift.payloads import PARALLEL_HASH_BYTES, read_payload, write_payload


class DictStore:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def put(self, uri: str, data: bytes) -> None:
        self.blobs[uri] = bytes(data)

    def get(self, uri: str) -> bytes:
        return self.blobs[uri]

    def exists(self, uri: str) -> bool:
        return uri in self.blobs

    def list(self, prefix: str) -> list[str]:
        return sorted(uri for uri in self.blobs if uri.startswith(prefix))


class StreamingStore(DictStore):
    """Hands blobs out in uneven chunks, as a download does."""

    def __init__(self) -> None:
        super().__init__()
        self.streamed = 0

    def get(self, uri: str) -> bytes:
        raise AssertionError("a streaming store is read through get_into")

    def get_into(self, uri: str, writer: Any) -> None:
        data = self.blobs[uri]
        for start in range(0, len(data), 777_777):
            writer.write(memoryview(data)[start : start + 777_777])
            self.streamed += 1


@pytest.mark.parametrize("store_class", [DictStore, StreamingStore])
@pytest.mark.parametrize("size", [0, 1000, PARALLEL_HASH_BYTES + 12_345])
def test_bytes_are_stored_as_they_are_and_verified(store_class: type[DictStore], size: int) -> None:
    store = store_class()
    data = os.urandom(size)
    ref = write_payload(store, "mem://a/output", data)
    assert ref.format == "bytes" and ref.uri == "mem://a/output.bin"
    assert store.blobs[ref.uri] == data
    assert ref.sha256 == hashlib.sha256(data).hexdigest()
    assert read_payload(store, ref) == data


@pytest.mark.parametrize("store_class", [DictStore, StreamingStore])
def test_a_changed_blob_is_refused_on_either_path(store_class: type[DictStore]) -> None:
    store = store_class()
    ref = write_payload(store, "mem://a/output", os.urandom(3_000_000))
    store.blobs[ref.uri] = store.blobs[ref.uri][:-1] + b"\0"
    with pytest.raises(IntegrityError, match="digest mismatch"):
        read_payload(store, ref)


def test_plain_data_stays_json_and_the_rest_is_pickled() -> None:
    store = DictStore()
    assert write_payload(store, "mem://j", {"a": [1, 2.5, None]}).format == "json"
    assert write_payload(store, "mem://p", bytearray(b"x")).format == "pickle"
    assert write_payload(store, "mem://t", (1, 2)).format == "pickle"
