"""Each cloud flavor against its emulator on 127.0.0.1: start it, build operators, drive jobs.

A :class:`Backend` hides what differs between SageMaker, Vertex AI and Azure ML for the
benchmarks: the emulator's start-up, the operator's config fields, the scripted statuses of a
running and a finished job, where the artifact store lives, and the raw storage SDK call the
store is compared with.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from steplift.launch import LaunchPolicy
from steplift.operator import StepOperator
from steplift.polling import DEFAULT_CLOCK, DEFAULT_SLEEP, Clock, Sleep
from steplift.registry import get_flavor
from steplift.testing.emulation import EmulatorBase

FLAVORS = ("sagemaker", "vertex", "azureml")
BUCKET = "steplift-bench"
AZURE_ACCOUNT = "devstoreaccount1"


@dataclass
class Backend:
    """One flavor's emulator, running, and what the benchmarks need to know about it."""

    flavor: str
    emulator: EmulatorBase
    fields: dict[str, Any]
    running: list[str]
    """Scripted statuses of a job that starts and keeps running."""
    finished: str
    """The scripted status of a job that succeeded."""
    create_operation: str
    """The emulator's request-log name of a job creation."""
    status_operation: str
    """The emulator's request-log name of a status call."""
    list_operation: str
    """The emulator's request-log name of a job list call (batched status, find_job)."""
    raw_upload: Callable[[str, bytes], None]
    """The storage SDK's own upload of bytes to a key of the bench bucket/container."""
    raw_download: Callable[[str], bytes]
    """The storage SDK's own download of a key."""
    shared: dict[str, Any] | None = None

    def operator(
        self,
        *,
        clock: Clock = DEFAULT_CLOCK,
        sleep: Sleep = DEFAULT_SLEEP,
        policy: LaunchPolicy | None = None,
    ) -> StepOperator:
        """A fresh operator of this flavor pointed at the emulator (Azure ML ones share clients)."""
        flavor = get_flavor(self.flavor)
        config = flavor.validate_config(self.fields)
        if self.flavor == "azureml":
            # Building an MLClient costs ~1 s; operators of one process share it, as tests do.
            from steplift_azureml.operator import AzureMLStepOperator

            if self.shared is None:
                self.shared = AzureMLStepOperator(config).share_clients()
            return AzureMLStepOperator(
                config,
                name="bench",
                clock=clock,
                sleep=sleep,
                policy=policy,
                **self.shared,
            )
        return flavor.create(config, name="bench", clock=clock, sleep=sleep, policy=policy)

    def finish(self, job_id: str) -> None:
        """Make the provider report the job as succeeded from its next status call on."""
        self.emulator.script(job_id, [self.finished])

    def count(self, operation: str) -> int:
        """How many calls of ``operation`` the emulator served."""
        return len(self.emulator.requests.filter(operation))


@contextmanager
def running_backend(flavor: str, mode: str = "scripted") -> Iterator[Backend]:
    """Start ``flavor``'s emulator (in ``mode``) with its storage; stop everything after."""
    starters = {"sagemaker": _sagemaker, "vertex": _vertex, "azureml": _azureml}
    with starters[flavor](mode) as backend:
        if mode == "scripted":
            backend.emulator.script(None, backend.running)
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


@contextmanager
def _sagemaker(mode: str) -> Iterator[Backend]:
    import boto3
    from boto3.s3.transfer import TransferConfig

    from steplift_sagemaker.emulator import SageMakerEmulator

    with SageMakerEmulator(mode=mode) as emulator, _environment(emulator.client_env()):
        s3 = boto3.session.Session().client("s3")
        s3.create_bucket(Bucket=BUCKET)
        transfer = TransferConfig()  # boto3's defaults: 8 MiB parts, 10 threads

        def upload(key: str, data: bytes) -> None:
            s3.upload_fileobj(io.BytesIO(data), BUCKET, key, Config=transfer)

        def download(key: str) -> bytes:
            sink = io.BytesIO()
            s3.download_fileobj(BUCKET, key, sink, Config=transfer)
            return sink.getvalue()

        yield Backend(
            flavor="sagemaker",
            emulator=emulator,
            fields={
                "region": emulator.region,
                "role_arn": "arn:aws:iam::123456789012:role/SageMakerRole",
                "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:latest",
                "bucket": f"s3://{BUCKET}/runs",
                "endpoint_url": emulator.endpoint_url,
            },
            running=["Starting", "Training"],
            finished="Completed",
            create_operation="CreateTrainingJob",
            status_operation="DescribeTrainingJob",
            list_operation="ListTrainingJobs",
            raw_upload=upload,
            raw_download=download,
        )


@contextmanager
def _vertex(mode: str) -> Iterator[Backend]:
    from steplift_vertex.emulator.server import VertexEmulator

    with VertexEmulator(mode, buckets=(BUCKET,)) as emulator, _environment(emulator.client_env()):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        assert emulator.storage_url is not None
        client = storage.Client(
            project=emulator.project,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": emulator.storage_url},
        )
        bucket = client.bucket(BUCKET)

        def upload(key: str, data: bytes) -> None:
            bucket.blob(key).upload_from_file(io.BytesIO(data), size=len(data))

        def download(key: str) -> bytes:
            sink = io.BytesIO()
            bucket.blob(key).download_to_file(sink)
            return sink.getvalue()

        yield Backend(
            flavor="vertex",
            emulator=emulator,
            fields=emulator.operator_config(),
            running=["JOB_STATE_PENDING", "JOB_STATE_RUNNING"],
            finished="JOB_STATE_SUCCEEDED",
            create_operation="CreateCustomJob",
            status_operation="GetCustomJob",
            list_operation="ListCustomJobs",
            raw_upload=upload,
            raw_download=download,
        )


@contextmanager
def _azureml(mode: str) -> Iterator[Backend]:
    from azure.storage.blob import BlobServiceClient

    from steplift_azureml.emulator import describe_operator_config
    from steplift_azureml.emulator.service import AzureMLEmulator

    quiet = {key: "" for key in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET")}
    with (
        AzureMLEmulator(mode, azurite=True, retry_after_ms=10) as emulator,
        _environment({**quiet, **emulator.client_env()}),
    ):
        assert emulator.storage_connection_string is not None
        service = BlobServiceClient.from_connection_string(emulator.storage_connection_string)
        container = service.get_container_client(BUCKET)
        container.create_container()

        def upload(key: str, data: bytes) -> None:
            container.upload_blob(key, data, overwrite=True, max_concurrency=4)

        def download(key: str) -> bytes:
            data: bytes = container.download_blob(key, max_concurrency=4).readall()
            return data

        fields = describe_operator_config(emulator, f"azureblob://{AZURE_ACCOUNT}/{BUCKET}/runs")
        fields.pop("flavor")
        yield Backend(
            flavor="azureml",
            emulator=emulator,
            fields=fields,
            running=["Queued", "Running"],
            finished="Completed",
            create_operation="CreateOrUpdateJob",
            status_operation="GetJob",
            list_operation="ListJobs",
            raw_upload=upload,
            raw_download=download,
        )
