"""The azureml flavor against the whole conformance suite, through the real azure-ai-ml
client, the executing HTTPS emulator and Azurite."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from azureml_helpers import operator_fields

from steplift.models import JobHandle, StepRunInfo
from steplift.operator import StepOperator
from steplift.polling import PollPolicy
from steplift.states import FailureKind
from steplift.testing import (
    BadInputCase,
    ConformanceClock,
    EmulatedBackend,
    StepOperatorConformance,
)
from steplift_azureml.config import AzureMLStepOperatorConfig
from steplift_azureml.emulator.service import AzureMLEmulator
from steplift_azureml.flavor import FLAVOR
from steplift_azureml.operator import AzureMLStepOperator

# azure-ai-ml 1.35 declares marshmallow schemas with an option marshmallow 3.2x deprecates.
pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")


class EmulatorBackend(EmulatedBackend):
    """Asks the emulator what happened, and breaks jobs the way Azure does.

    One emulator serves the whole module, so jobs are counted from this test's start.
    """

    def __init__(self, emulator: AzureMLEmulator) -> None:
        self.emulator = emulator
        self.jobs_before = emulator.created_jobs

    def submissions(self) -> int:
        return self.emulator.created_jobs - self.jobs_before

    def api_calls(self) -> int:
        return len(self.emulator.requests)

    def fail_infrastructure(self, operator: StepOperator, handle: JobHandle) -> FailureKind:
        # The conformance operator runs on spot capacity: Azure takes the node back.
        self.emulator.preempt(handle.job_id)
        return FailureKind.PREEMPTED

    def is_running(self, operator: StepOperator, handle: JobHandle) -> bool:
        # Any process of the job, on any of its instances.
        return self.emulator.is_running(handle.job_id)

    def operator_with_secret(
        self, operator: StepOperator, name: str, value: str
    ) -> StepOperator | None:
        assert isinstance(operator, AzureMLStepOperator)
        reference = self.emulator.add_secret(f"conformance-{uuid.uuid4().hex[:12]}", value)
        config = operator.config.model_copy(update={"secrets": {name: reference}})
        return AzureMLStepOperator(
            config,
            name=operator.name,
            **operator.share_clients(),
            clock=operator.clock,
            sleep=operator.sleep,
            policy=operator.policy,
        )


@pytest.fixture(scope="module")
def shared_operator(execute_emulator: AzureMLEmulator) -> Iterator[AzureMLStepOperator]:
    """One MLClient for the module (building one costs the SDK's import and setup)."""
    config = FLAVOR.validate_config(operator_fields(execute_emulator, spot=True))
    operator = AzureMLStepOperator(config)
    operator.share_clients()  # build the clients once
    yield operator


class TestAzureMLConformance(StepOperatorConformance):
    flavor = "azureml"

    @pytest.fixture
    def operator(
        self, clock: ConformanceClock, shared_operator: AzureMLStepOperator
    ) -> AzureMLStepOperator:
        assert isinstance(shared_operator.config, AzureMLStepOperatorConfig)
        return AzureMLStepOperator(
            shared_operator.config,
            name="azureml",
            **shared_operator.share_clients(),
            clock=clock.now,
            sleep=clock.sleep,
            policy=replace(
                AzureMLStepOperator.launch_policy,
                poll=PollPolicy(initial=0.5, factor=1.5, maximum=5.0),
            ),
        )

    @pytest.fixture
    def backend(self, execute_emulator: AzureMLEmulator) -> EmulatorBackend:
        return EmulatorBackend(execute_emulator)

    @pytest.fixture
    def invalid_configs(self, execute_emulator: AzureMLEmulator) -> list[dict[str, Any]]:
        good = operator_fields(execute_emulator)
        return [
            {**good, "subscription_id": "not-a-guid"},
            {**good, "workspace": "x"},
            {**good, "instance_type": "Standard_Imaginary_v9"},
            {**good, "instance_type": None, "gpu": "A100:3"},
            {k: v for k, v in good.items() if k != "instance_type"},
            {**good, "compute": "1-bad-cluster-name-too-long"},
            {**good, "artifact_root": "s3://bucket/path"},
            {**good, "environment_name": "env:1"},
            {**good, "cloud_endpoint": "http://127.0.0.1:1"},
            {**good, "unknown_field": 1},
        ]

    @pytest.fixture
    def bad_input(self, execute_emulator: AzureMLEmulator) -> BadInputCase:
        # The module's emulator: the scripted one would put its own CA in the environment.
        def build(operator: StepOperator, info: StepRunInfo) -> object:
            assert isinstance(operator, AzureMLStepOperator)
            command = ["python", "-m", "x"]
            return operator.build_job(info, command, operator.job_environment(info))

        return BadInputCase(
            good={
                "subscription_id": "00000000-0000-0000-0000-000000000000",
                "resource_group": "ml-rg",
                "workspace": "ml-ws",
                "artifact_root": "azureblob://mystorage/steplift/root",
                "image": "python:3.11",
                "instance_type": "Standard_DS3_v2",
            },
            fields=[
                "environment_name",
                "compute",
                "gpu",
                "instance_count",
                "max_runtime",
                "spot",
                "spot_compute",
                "job_tier",
                "experiment_name",
                "tags",
                "environment",
                "identity",
                "secrets",
            ],
            gpus=["A100:1", "A100:3", "V100:2", "T4:1", None],
            example_gpus=["A100:8"],
            artifact_uri="azureblob://mystorage/steplift/root/1",
            build=build,
            requests=lambda: len(execute_emulator.requests.list()),
            max_examples=100,
        )
