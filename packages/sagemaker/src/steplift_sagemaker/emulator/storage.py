"""The object storage SageMaker pairs with: moto's S3, and the emulator's own calls to it.

S3 is moto's, served on the emulator's endpoint. The emulator moves a job's data (channels,
checkpoints, model and output tarballs) and its log lines through boto3 clients aimed at
itself: going through the served API (instead of moto's backends in-process) keeps the emulator
on moto's public surface. These calls carry `X-Steplift-Internal` so they are neither logged
nor faulted.
"""

from __future__ import annotations

import contextlib
import tarfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client

INTERNAL_HEADER = "X-Steplift-Internal"
"""Marks the emulator's own calls to itself: never logged, never faulted."""
INTERNAL_ENVIRON_KEY = "HTTP_X_STEPLIFT_INTERNAL"
DEFAULT_BUCKET = "steplift"
"""The bucket every emulator makes when it starts (its ``operator_config`` points there)."""


def split_s3_uri(uri: str) -> tuple[str, str]:
    """("bucket", "key/prefix") of an s3:// URI."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _mark_internal(request: Any, **_: Any) -> None:
    request.headers[INTERNAL_HEADER] = "1"


class InternalClients:
    """Lazily built boto3 clients aimed at the emulator's own endpoint."""

    def __init__(self, endpoint_url: str, region: str) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self._lock = threading.Lock()
        self._s3: S3Client | None = None
        self._logs: CloudWatchLogsClient | None = None
        self._secrets: Any = None

    def _client(self, service: str) -> Any:
        session = boto3.session.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name=self.region,
        )
        client = session.client(
            service,  # type: ignore[call-overload]  # the service name is one of two literals
            endpoint_url=self.endpoint_url,
            config=Config(retries={"max_attempts": 3, "mode": "standard"}, proxies={}),
        )
        client.meta.events.register("request-created", _mark_internal)
        return client

    @property
    def s3(self) -> S3Client:
        """S3 client for job data (channels, checkpoints, model artifacts)."""
        with self._lock:
            if self._s3 is None:
                self._s3 = self._client("s3")
            return self._s3

    @property
    def logs(self) -> CloudWatchLogsClient:
        """CloudWatch Logs client for job output."""
        with self._lock:
            if self._logs is None:
                self._logs = self._client("logs")
            return self._logs

    @property
    def secretsmanager(self) -> Any:
        """Secrets Manager client for the emulator's own secret calls (see secrets.py)."""
        with self._lock:
            if self._secrets is None:
                self._secrets = self._client("secretsmanager")
            return self._secrets

    def ensure_bucket(self, bucket: str) -> None:
        """Create ``bucket`` unless it exists (moto's S3 is shared by a process's emulators)."""
        s3 = self.s3
        with contextlib.suppress(
            s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists
        ):
            if self.region == "us-east-1":  # the one region that refuses a location
                s3.create_bucket(Bucket=bucket)
            else:
                s3.create_bucket(
                    Bucket=bucket,
                    CreateBucketConfiguration={"LocationConstraint": self.region},  # type: ignore[typeddict-item]
                )


def download_prefix(s3: S3Client, uri: str, destination: Path) -> int:
    """Copy every object under an s3:// prefix into a directory; returns the file count."""
    bucket, prefix = split_s3_uri(uri)
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            relative = key[len(prefix) :].lstrip("/") or Path(key).name
            if key.endswith("/"):
                continue
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(target))
            count += 1
    return count


def upload_directory(s3: S3Client, source: Path, uri: str) -> int:
    """Copy every file of a directory under an s3:// prefix; returns the file count."""
    bucket, prefix = split_s3_uri(uri)
    count = 0
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        key = f"{prefix.rstrip('/')}/{path.relative_to(source).as_posix()}".lstrip("/")
        s3.upload_file(str(path), bucket, key)
        count += 1
    return count


def upload_tarball(s3: S3Client, source: Path, uri: str) -> None:
    """Upload a directory as one gzipped tarball (how SageMaker ships model.tar.gz)."""
    bucket, key = split_s3_uri(uri)
    archive = source.parent / f".{source.name}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(source.rglob("*")):
            tar.add(path, arcname=path.relative_to(source).as_posix(), recursive=False)
    try:
        s3.upload_file(str(archive), bucket, key)
    finally:
        archive.unlink(missing_ok=True)
