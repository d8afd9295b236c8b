"""The sagemaker flavor against the conformance suite, on the executing emulator."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from sagemaker_helpers import EmulatorClients, with_framework_images

from steplift.models import JobHandle, StepRunInfo
from steplift.operator import StepOperator
from steplift.states import FailureKind
from steplift.testing import (
    BadInputCase,
    ConformanceClock,
    EmulatedBackend,
    StepOperatorConformance,
)
from steplift.testing.emulation import wait_until
from steplift_sagemaker.emulator import SageMakerEmulator
from steplift_sagemaker.flavor import FLAVOR
from steplift_sagemaker.operator import SageMakerStepOperator
from steplift_sagemaker.requests import build_request

ROLE = "arn:aws:iam::123456789012:role/steplift"
BUCKET = "steplift-conformance"


@pytest.fixture(scope="module")
def emulator() -> Iterator[SageMakerEmulator]:
    with with_framework_images(SageMakerEmulator(mode="execute")) as running:
        yield running


@pytest.fixture
def aws_env(emulator: SageMakerEmulator, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = emulator.client_env()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


class EmulatorBackend(EmulatedBackend):
    """Counts what the real boto3 client sent; loses instances under running jobs."""

    def __init__(self, emulator: SageMakerEmulator) -> None:
        self.emulator = emulator

    def submissions(self) -> int:
        # Jobs that exist (a throttled create is in the request log but made no job).
        return len(self.emulator.job_ids())

    def api_calls(self) -> int:
        return len([r for r in self.emulator.requests.list() if r.service == "sagemaker"])

    def fail_infrastructure(self, operator: StepOperator, handle: JobHandle) -> FailureKind:
        runner = self.emulator.runner(handle.job_id)
        # "Training" is reported just before the process starts.
        assert runner is not None and wait_until(lambda: runner.process is not None)
        self.emulator.fail_instance(handle.job_id)
        return FailureKind.INFRASTRUCTURE

    def is_running(self, operator: StepOperator, handle: JobHandle) -> bool:
        # Any host's process: a multi-node job is running while one of its hosts is.
        runner = self.emulator.runner(handle.job_id)
        return runner is not None and runner.processes_running()

    def operator_with_secret(
        self, operator: StepOperator, name: str, value: str
    ) -> StepOperator | None:
        secrets = boto3.session.Session().client(
            "secretsmanager", endpoint_url=self.emulator.endpoint_url
        )
        arn = secrets.create_secret(Name=f"conformance-{uuid.uuid4().hex}", SecretString=value)
        config = operator.config.model_copy(update={"secrets": {name: arn["ARN"]}})
        return FLAVOR.create(config, name=operator.name, clock=operator.clock, sleep=operator.sleep)


class TestSageMakerConformance(StepOperatorConformance):
    flavor = "sagemaker"

    @pytest.fixture
    def operator(
        self, clock: ConformanceClock, emulator: SageMakerEmulator, aws_env: dict[str, str]
    ) -> SageMakerStepOperator:
        flavor = FLAVOR
        config = flavor.validate_config(
            {
                "region": emulator.region,
                "role_arn": ROLE,
                "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:latest",
                "bucket": f"s3://{BUCKET}/runs",
                "endpoint_url": emulator.endpoint_url,
            }
        )
        operator = flavor.create(config, name="sm", clock=clock.now, sleep=clock.sleep)
        assert isinstance(operator, SageMakerStepOperator)
        s3 = boto3.session.Session().client("s3", endpoint_url=emulator.endpoint_url)
        s3.create_bucket(Bucket=BUCKET)
        return operator

    @pytest.fixture
    def backend(self, emulator: SageMakerEmulator) -> EmulatorBackend:
        # The emulator serves the whole module: each test counts only its own calls.
        emulator.requests.clear()
        return EmulatorBackend(emulator)

    @pytest.fixture
    def invalid_configs(self) -> list[dict[str, Any]]:
        good = {
            "region": "us-east-1",
            "role_arn": ROLE,
            "image": "img",
            "bucket": "s3://bucket-1/p",
        }
        return [
            {**good, "role_arn": "not-an-arn"},
            {**good, "bucket": "gs://bucket-1/p"},
            {**good, "instance_type": "ml.g5.huge"},
            {**good, "gpu": "A10G:3"},
            {**good, "environment": {f"K{i}": "v" for i in range(101)}},
            {**good, "environment": {"K": "v" * 1025}},
            {**good, "spot": False, "max_wait": 100},
            {**good, "subnets": ["subnet-1"]},
            {key: value for key, value in good.items() if key != "image"},
            {**good, "colour": "blue"},
        ]

    @pytest.fixture
    def bad_input(self, scripted: EmulatorClients) -> BadInputCase:
        def build(operator: StepOperator, info: StepRunInfo) -> object:
            assert isinstance(operator, SageMakerStepOperator)
            command = ["python", "-m", "x"]
            operator.check_step(info)
            return build_request(operator.config, info, command, operator.job_environment(info))

        return BadInputCase(
            good={
                "region": "us-east-1",
                "role_arn": ROLE,
                "image": "img",
                "bucket": "s3://bucket-1/p",
            },
            fields=[
                "instance_type",
                "gpu",
                "instance_count",
                "volume_size_gb",
                "spot",
                "max_wait",
                "max_runtime",
                "keep_alive",
                "subnets",
                "security_group_ids",
                "kms_key",
                "tags",
                "environment",
                "checkpoint_s3_uri",
                "aws_access_key_id",
                "secrets",
            ],
            gpus=["T4:1", "A10G:3", "A100:8", "H100:2", None],
            example_gpus=["A10G:1"],
            artifact_uri="s3://bucket-1/p/p/r/s/1",
            build=build,
            requests=lambda: len(scripted.emulator.requests.list()),
            max_examples=200,
        )
