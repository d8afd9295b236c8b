"""The S3 artifact store (``s3://bucket/key``)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from steplift.errors import ConfigError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
else:
    S3Client = Any


MULTIPART_BYTES = 8 * 1024 * 1024
"""Payloads this big go up as a parallel multipart upload (boto3's own threshold)."""


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/key`` -> (``bucket``, ``some/key``)."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ConfigError("expected an s3://bucket/key URI", value=uri, has_value=True)
    return parsed.netloc, parsed.path.lstrip("/")


def _default_client() -> S3Client:
    # Inside a job: region, credentials and AWS_ENDPOINT_URL come from the environment.
    from steplift_sagemaker.clients import make_client

    client: S3Client = make_client("s3")
    return client


class S3ArtifactStore:
    """Blobs in S3. Built with no arguments it uses boto3's usual environment lookup."""

    def __init__(self, client_factory: Callable[[], S3Client] | None = None) -> None:
        self._factory = client_factory or _default_client
        self._client: S3Client | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> S3Client:
        """The S3 client, created once, on first use."""
        with self._lock:
            if self._client is None:
                self._client = self._factory()
            return self._client

    def put(self, uri: str, data: bytes) -> None:
        bucket, key = split_s3_uri(uri)
        if len(data) < MULTIPART_BYTES:
            self.client.put_object(Bucket=bucket, Key=key, Body=data)
            return
        import io

        # boto3's managed transfer: parts in parallel threads; the object appears only when
        # the multipart upload completes, so readers never see half of it.
        self.client.upload_fileobj(io.BytesIO(data), bucket, key)

    def get(self, uri: str) -> bytes:
        bucket, key = split_s3_uri(uri)
        try:
            response = self.client.get_object(Bucket=bucket, Key=key)
        except self.client.exceptions.NoSuchKey:
            raise FileNotFoundError(uri) from None
        body: bytes = response["Body"].read()
        return body

    def exists(self, uri: str) -> bool:
        from botocore.exceptions import ClientError

        bucket, key = split_s3_uri(uri)
        try:
            self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def list(self, prefix: str) -> list[str]:
        bucket, key = split_s3_uri(prefix)
        key = key.rstrip("/") + "/" if key else ""
        found: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=key
        ):
            found += [f"s3://{bucket}/{item['Key']}" for item in page.get("Contents", [])]
        return sorted(found)
