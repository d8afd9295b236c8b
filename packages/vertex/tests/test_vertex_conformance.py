"""The vertex flavor against the whole conformance suite, on the executing emulator."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from vertex_support import OperatorFactory

from steplift.models import JobHandle, StepRunInfo
from steplift.operator import StepOperator
from steplift.states import FailureKind
from steplift.testing import (
    BadInputCase,
    ConformanceClock,
    EmulatedBackend,
    StepOperatorConformance,
)
from steplift_vertex.emulator import VertexEmulator
from steplift_vertex.operator import VertexStepOperator
from steplift_vertex.requests import build_request


class VertexBackend(EmulatedBackend):
    """Reads the emulator's request log and job table; breaks jobs the way Vertex does."""

    def __init__(self, emulator: VertexEmulator) -> None:
        self.emulator = emulator

    def submissions(self) -> int:
        return self.emulator.submissions()

    def api_calls(self) -> int:
        return sum(
            1 for request in self.emulator.requests.list() if request.service == "aiplatform"
        )

    def fail_infrastructure(self, operator: StepOperator, handle: JobHandle) -> FailureKind:
        # Compute Engine reclaims the Spot VM under the running replica.
        self.emulator.preempt(handle.job_id)
        return FailureKind.PREEMPTED

    def is_running(self, operator: StepOperator, handle: JobHandle) -> bool:
        return self.emulator.is_running(handle.job_id)

    def operator_with_secret(
        self, operator: StepOperator, name: str, value: str
    ) -> StepOperator | None:
        secret = f"conformance-{uuid.uuid4().hex[:12]}"
        reference = self.emulator.add_secret(secret, value)
        config = operator.config.model_copy(update={"secrets": {name: reference}})
        return type(operator)(
            config, name=operator.name, clock=operator.clock, sleep=operator.sleep
        )


class TestVertexConformance(StepOperatorConformance):
    flavor = "vertex"

    @pytest.fixture
    def operator(
        self, clock: ConformanceClock, emulator: VertexEmulator, make_operator: OperatorFactory
    ) -> VertexStepOperator:
        # Spot, so that the emulator can preempt a job (the infrastructure failure test).
        return make_operator(emulator, clock=clock, spot=True)

    @pytest.fixture
    def backend(self, emulator: VertexEmulator) -> VertexBackend:
        return VertexBackend(emulator)

    @pytest.fixture
    def invalid_configs(self) -> list[dict[str, Any]]:
        base = {"project": "my-project", "image": "img", "staging_bucket": "gs://bucket/x"}
        return [
            {**base, "project": "Bad_Project"},
            {**base, "staging_bucket": "s3://bucket"},
            {**base, "gpu": "A100:3"},
            {**base, "machine_type": "n1-standard-8", "accelerator_type": "NVIDIA_L4"},
            {**base, "machine_type": "a2-highgpu-8g", "accelerator_count": 4},
            {**base, "labels": {"Team": "ml"}},
            {**base, "display_name_prefix": "x" * 41},
            {**base, "replica_count": 0},
            {**base, "boot_disk_size_gb": 20},
            {**base, "location": "Mars"},
            {**base, "api_endpoint": "http://example.com"},
            {**base, "regoin": "us-central1"},
            {"image": "img", "staging_bucket": "gs://bucket/x"},
        ]

    @pytest.fixture
    def bad_input(self, scripted: VertexEmulator) -> BadInputCase:
        def build(operator: StepOperator, info: StepRunInfo) -> object:
            assert isinstance(operator, VertexStepOperator)
            command = ["python", "-m", "x"]
            operator.check_step(info)
            return build_request(operator.config, info, command, operator.job_environment(info))

        return BadInputCase(
            good={"project": "my-project", "image": "img", "staging_bucket": "gs://bkt/x"},
            fields=[
                "location",
                "machine_type",
                "accelerator_type",
                "accelerator_count",
                "gpu",
                "replica_count",
                "boot_disk_size_gb",
                "max_runtime",
                "spot",
                "labels",
                "environment",
                "service_account",
                "network",
                "secrets",
                "credentials",
            ],
            gpus=["T4:1", "A100:3", "A100:8", "L4:2", "H100:8", None],
            example_gpus=["A100:8"],
            artifact_uri="gs://bkt/x/p/r/s/1",
            build=build,
            requests=lambda: len(scripted.requests.list()),
            max_examples=150,
        )
