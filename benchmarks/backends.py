"""Each cloud flavor against its emulator on 127.0.0.1: start it, build operators, drive jobs.

The emulator is the one its provider package registers (the ``steplift.emulators`` entry
point) and says itself which operator config points at it (``operator_config()``); operators
are built from that by ``steplift.emulation.emulated_operator``, as tests and examples build
theirs. What a :class:`Cloud` adds is only what the benchmarks need beyond the emulator: the
scripted statuses of a running and a finished job, the request-log names of the calls they
count, and the raw storage SDK calls the artifact store is compared with.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from steplift.emulation import Emulator, EmulatorMode, emulated_operator
from steplift.launch import LaunchPolicy
from steplift.operator import StepOperator
from steplift.polling import DEFAULT_CLOCK, DEFAULT_SLEEP, Clock, Sleep
from steplift.registry import installed_emulators

FLAVORS = ("sagemaker", "vertex", "azureml")
BUCKET = "steplift-bench"
"""The bucket (Azure: container) the raw storage SDK calls write to, made by them."""

Upload = Callable[[str, bytes], None]
Download = Callable[[str], bytes]
RawStorage = Callable[[], AbstractContextManager[tuple[Upload, Download]]]
"""The storage SDK's own upload and download of a key of :data:`BUCKET`, on the storage the
emulator's ``client_env()`` (set in the environment) points the SDK at."""


@dataclass(frozen=True)
class Cloud:
    """What the benchmarks need to know of one flavor beyond what its emulator says."""

    running: tuple[str, ...]
    """Scripted statuses of a job that starts and keeps running."""
    finished: str
    """The scripted status of a job that succeeded."""
    create_operation: str
    """The emulator's request-log name of a job creation."""
    status_operation: str
    """The emulator's request-log name of a status call."""
    list_operation: str
    """The emulator's request-log name of a job list call (batched status, find_job)."""
    raw_storage: RawStorage
    emulator_options: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the emulator's constructor beyond its mode."""


@dataclass
class Backend:
    """One flavor's emulator, running, and what the benchmarks need to know about it."""

    flavor: str
    emulator: Emulator
    cloud: Cloud
    raw_upload: Upload
    """The storage SDK's own upload of bytes to a key of the bench bucket/container."""
    raw_download: Download
    """The storage SDK's own download of a key."""

    @property
    def running(self) -> list[str]:
        """Scripted statuses of a job that starts and keeps running."""
        return list(self.cloud.running)

    @property
    def finished(self) -> str:
        """The scripted status of a job that succeeded."""
        return self.cloud.finished

    def operator_config(self) -> dict[str, Any]:
        """The operator config (``"flavor"`` included) the emulator says points at it."""
        return self.emulator.operator_config()

    def operator(
        self,
        *,
        clock: Clock = DEFAULT_CLOCK,
        sleep: Sleep = DEFAULT_SLEEP,
        policy: LaunchPolicy | None = None,
    ) -> StepOperator:
        """A fresh operator of this flavor pointed at the emulator (its own clients)."""
        return emulated_operator(
            self.emulator, name="bench", clock=clock, sleep=sleep, policy=policy
        )

    def finish(self, job_id: str) -> None:
        """Make the provider report the job as succeeded from its next status call on."""
        self.emulator.script(job_id, [self.cloud.finished])

    def count(self, operation: str) -> int:
        """How many calls of ``operation`` the emulator served."""
        return len(self.emulator.requests.filter(operation))


# Credentials of the calling shell must not reach the emulator's clients.
_QUIET = {key: "" for key in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET")}


@contextmanager
def running_backend(flavor: str, mode: EmulatorMode = "scripted") -> Iterator[Backend]:
    """Start ``flavor``'s emulator (in ``mode``) with its storage; stop everything after."""
    cloud = CLOUDS[flavor]
    emulator_class = installed_emulators()[flavor].load()
    with (
        emulator_class(mode, **cloud.emulator_options) as emulator,
        _environment({**_QUIET, **emulator.client_env()}),
        cloud.raw_storage() as (upload, download),
    ):
        backend = Backend(flavor, emulator, cloud, upload, download)
        if mode == "scripted":
            emulator.script(None, backend.running)
        yield backend


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# -- the raw storage SDKs --------------------------------------------------------------------


@contextmanager
def _s3() -> Iterator[tuple[Upload, Download]]:
    """boto3's TransferManager with its defaults (8 MiB parts, 10 threads)."""
    import boto3
    from boto3.s3.transfer import TransferConfig

    s3 = boto3.session.Session().client("s3")
    s3.create_bucket(Bucket=BUCKET)
    transfer = TransferConfig()

    def upload(key: str, data: bytes) -> None:
        s3.upload_fileobj(io.BytesIO(data), BUCKET, key, Config=transfer)

    def download(key: str) -> bytes:
        sink = io.BytesIO()
        s3.download_fileobj(BUCKET, key, sink, Config=transfer)
        return sink.getvalue()

    yield upload, download


@contextmanager
def _gcs() -> Iterator[tuple[Upload, Download]]:
    """google-cloud-storage's own upload_from_file/download_to_file."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(
        project=os.environ["GOOGLE_CLOUD_PROJECT"],
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": os.environ["STORAGE_EMULATOR_HOST"]},
    )
    bucket = client.create_bucket(BUCKET)

    def upload(key: str, data: bytes) -> None:
        bucket.blob(key).upload_from_file(io.BytesIO(data), size=len(data))

    def download(key: str) -> bytes:
        sink = io.BytesIO()
        bucket.blob(key).download_to_file(sink)
        return sink.getvalue()

    yield upload, download


@contextmanager
def _azure_blob() -> Iterator[tuple[Upload, Download]]:
    """azure-storage-blob's upload_blob/download_blob, 4 transfers at once."""
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(
        os.environ["AZURE_STORAGE_CONNECTION_STRING"]
    )
    container = service.get_container_client(BUCKET)
    container.create_container()

    def upload(key: str, data: bytes) -> None:
        container.upload_blob(key, data, overwrite=True, max_concurrency=4)

    def download(key: str) -> bytes:
        data: bytes = container.download_blob(key, max_concurrency=4).readall()
        return data

    yield upload, download


CLOUDS = {
    "sagemaker": Cloud(
        running=("Starting", "Training"),
        finished="Completed",
        create_operation="CreateTrainingJob",
        status_operation="DescribeTrainingJob",
        list_operation="ListTrainingJobs",
        raw_storage=_s3,
    ),
    "vertex": Cloud(
        running=("JOB_STATE_PENDING", "JOB_STATE_RUNNING"),
        finished="JOB_STATE_SUCCEEDED",
        create_operation="CreateCustomJob",
        status_operation="GetCustomJob",
        list_operation="ListCustomJobs",
        raw_storage=_gcs,
    ),
    "azureml": Cloud(
        running=("Queued", "Running"),
        finished="Completed",
        create_operation="CreateOrUpdateJob",
        status_operation="GetJob",
        list_operation="ListJobs",
        raw_storage=_azure_blob,
        # Azurite holds the artifact store; only an executing emulator starts it unasked.
        emulator_options={"azurite": True},
    ),
}
