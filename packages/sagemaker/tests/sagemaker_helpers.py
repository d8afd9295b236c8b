"""Helpers for tests that drive the SageMaker emulator through real boto3 clients."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import boto3
from botocore.config import Config

from steplift.launch.policy import LaunchPolicy
from steplift.polling import DEFAULT_CLOCK, DEFAULT_SLEEP, Clock, Sleep
from steplift.testing.emulation import wait_until
from steplift_sagemaker.emulator import SageMakerEmulator
from steplift_sagemaker.emulator.logs import LOG_GROUP
from steplift_sagemaker.operator import SageMakerStepOperator

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker import SageMakerClient

TEST_ROLE = "arn:aws:iam::123456789012:role/steplift-test"
TEST_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/steplift:test"
"""The image of the jobs `training_job_request` builds."""
FRAMEWORK_IMAGES = (TEST_IMAGE, "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:latest")
"""The images the tests' jobs name (the emulator's operator default among them)."""
STOCK_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/stock:latest"
"""An image no test registers: the emulator runs it as the stock image."""
TERMINAL_STATUSES = ("Completed", "Failed", "Stopped")


def with_framework_images(emulator: SageMakerEmulator) -> SageMakerEmulator:
    """``emulator`` with :data:`FRAMEWORK_IMAGES` registered as the test suite's own Python
    environment: a "framework image with steplift" (until jobs install steplift themselves,
    a stock image cannot import it)."""
    for uri in FRAMEWORK_IMAGES:
        emulator.images.register(uri, sys.prefix)
    return emulator


def make_client(emulator: SageMakerEmulator, service: str, total_attempts: int = 3) -> Any:
    """A boto3 client for `service` aimed at the emulator (standard retry mode).

    botocore's `max_attempts` counts retries only; `total_max_attempts` counts every attempt,
    so `total_attempts=1` really means no retry.
    """
    return boto3.session.Session().client(
        service,  # type: ignore[call-overload]  # any service name the emulator serves
        endpoint_url=emulator.endpoint_url,
        region_name=emulator.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": total_attempts, "mode": "standard"}),
    )


@dataclass
class EmulatorClients:
    """Real SageMaker, S3 and CloudWatch Logs clients aimed at one emulator."""

    emulator: SageMakerEmulator
    sagemaker: SageMakerClient
    s3: S3Client
    logs: CloudWatchLogsClient

    @classmethod
    def of(cls, emulator: SageMakerEmulator) -> EmulatorClients:
        """Clients for a running emulator."""
        return cls(
            emulator,
            make_client(emulator, "sagemaker"),
            make_client(emulator, "s3"),
            make_client(emulator, "logs"),
        )

    def sagemaker_with(self, total_attempts: int) -> SageMakerClient:
        """A SageMaker client allowed `total_attempts` attempts per call (1: no retry)."""
        client: SageMakerClient = make_client(self.emulator, "sagemaker", total_attempts)
        return client

    def status(self, name: str) -> tuple[str, str]:
        """(TrainingJobStatus, SecondaryStatus) now (a DescribeTrainingJob call)."""
        answer = self.sagemaker.describe_training_job(TrainingJobName=name)
        return answer["TrainingJobStatus"], answer["SecondaryStatus"]

    def wait_for(
        self,
        name: str,
        statuses: tuple[str, ...] = TERMINAL_STATUSES,
        timeout: float = 15.0,
    ) -> dict[str, Any]:
        """Describe every 50 ms until the primary or secondary status is one of `statuses`."""
        answers: list[dict[str, Any]] = []

        def reached() -> bool:
            answer = self.sagemaker.describe_training_job(TrainingJobName=name)
            answers.append(dict(answer))
            return answer["TrainingJobStatus"] in statuses or answer["SecondaryStatus"] in statuses

        if not wait_until(reached, timeout=timeout):
            last = answers[-1]["SecondaryStatus"] if answers else "unknown"
            raise TimeoutError(f"{name} still {last} after {timeout} s")
        return answers[-1]

    def log_lines(self, name: str) -> list[str]:
        """Every CloudWatch log line of a job, over all its streams, read with forward tokens."""
        try:
            streams = self.logs.describe_log_streams(
                logGroupName=LOG_GROUP, logStreamNamePrefix=f"{name}/"
            )["logStreams"]
        except self.logs.exceptions.ResourceNotFoundException:
            return []
        lines: list[str] = []
        for stream in sorted(item["logStreamName"] for item in streams):
            page = self.logs.get_log_events(
                logGroupName=LOG_GROUP, logStreamName=stream, startFromHead=True
            )
            for _ in range(1000):
                lines += [event["message"] for event in page["events"]]
                token = page["nextForwardToken"]
                page = self.logs.get_log_events(
                    logGroupName=LOG_GROUP, logStreamName=stream, nextToken=token
                )
                if not page["events"]:
                    break
        return lines


def training_job_request(
    name: str,
    command: list[str] | None = None,
    *,
    bucket: str,
    max_runtime: int = 60,
    spot: bool = False,
    checkpoint: bool = False,
    environment: dict[str, str] | None = None,
    instance_count: int = 1,
) -> dict[str, Any]:
    """CreateTrainingJob parameters; execute mode runs `command` (entrypoint + arguments) on
    each of the `instance_count` hosts."""
    spec: dict[str, Any] = {
        "TrainingImage": TEST_IMAGE,
        "TrainingInputMode": "File",
    }
    if command:
        spec["ContainerEntrypoint"] = command[:1]
        if command[1:]:
            spec["ContainerArguments"] = command[1:]
    request: dict[str, Any] = {
        "TrainingJobName": name,
        "RoleArn": TEST_ROLE,
        "AlgorithmSpecification": spec,
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/output"},
        "ResourceConfig": {
            "InstanceType": "ml.g5.xlarge",
            "InstanceCount": instance_count,
            "VolumeSizeInGB": 30,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime},
        "Environment": environment or {"STEPLIFT_TEST": "1"},
    }
    if spot:
        request["EnableManagedSpotTraining"] = True
        request["StoppingCondition"]["MaxWaitTimeInSeconds"] = max_runtime * 2
    if checkpoint:
        request["CheckpointConfig"] = {
            "S3Uri": f"s3://{bucket}/checkpoints/{name}",
            "LocalPath": "/opt/ml/checkpoints",
        }
    return request


class MakeOperator(Protocol):
    """The `make_operator` fixture (conftest.py): an operator pointed at an emulator."""

    def __call__(
        self,
        emulator: SageMakerEmulator,
        *,
        name: str = "emulated",
        clock: Clock = DEFAULT_CLOCK,
        sleep: Sleep = DEFAULT_SLEEP,
        policy: LaunchPolicy | None = None,
        **fields: Any,
    ) -> SageMakerStepOperator: ...
