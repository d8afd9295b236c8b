"""The emulator's own S3 and CloudWatch Logs traffic, sent to itself through boto3.

Going through the served API (instead of moto's backends in-process) keeps the emulator on
moto's public surface. These calls carry `X-Steplift-Internal` so they are neither logged nor
faulted.
"""

from __future__ import annotations

import contextlib
import logging
import tarfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from .awsjson import INTERNAL_HEADER

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
_MAX_EVENT_CHARS = 256 * 1024 - 26  # CloudWatch's event size limit, less its per-event overhead
_MAX_BATCH = 1000
_FLUSH_INTERVAL = 0.05


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


class LogStreamWriter:
    """Ships a job's output lines to one CloudWatch log stream, in batches every 50 ms."""

    def __init__(self, client: CloudWatchLogsClient, stream: str, group: str = LOG_GROUP) -> None:
        self.client = client
        self.group = group
        self.stream = stream
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._ensure_stream()
        self._thread = threading.Thread(target=self._run, name=f"logs-{stream}", daemon=True)
        self._thread.start()

    def _ensure_stream(self) -> None:
        exists = self.client.exceptions.ResourceAlreadyExistsException
        with contextlib.suppress(exists):
            self.client.create_log_group(logGroupName=self.group)
        with contextlib.suppress(exists):
            self.client.create_log_stream(logGroupName=self.group, logStreamName=self.stream)

    def write(self, line: str) -> None:
        """Queue one output line (timestamped now)."""
        event = {"timestamp": int(time.time() * 1000), "message": line[:_MAX_EVENT_CHARS]}
        with self._lock:
            self._pending.append(event)

    def close(self) -> None:
        """Send what is left and stop the shipping thread."""
        self._closing.set()
        self._thread.join(10.0)

    def _run(self) -> None:
        while True:
            closing = self._closing.wait(_FLUSH_INTERVAL)
            self._flush()
            if closing:
                return

    def _flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for start in range(0, len(pending), _MAX_BATCH):
            try:
                self.client.put_log_events(
                    logGroupName=self.group,
                    logStreamName=self.stream,
                    logEvents=pending[start : start + _MAX_BATCH],  # type: ignore[arg-type]
                )
            except Exception:  # losing log lines must not break the job
                logger.exception("could not ship log lines to %s", self.stream)


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
