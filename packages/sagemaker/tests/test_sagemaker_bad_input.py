"""Property test: any sagemaker operator table is accepted or refused with one ConfigError
naming the field, and building requests from it sends nothing to the (emulated) service."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from steplift.models import StepRunInfo
from steplift.operator import StepOperator
from steplift.testing.properties import VALUES, check_operator_table
from steplift_sagemaker.emulator import SageMakerEmulator
from steplift_sagemaker.operator import SageMakerStepOperator

GOOD = {
    "region": "us-east-1",
    "role_arn": "arn:aws:iam::123456789012:role/steplift",
    "image": "img",
    "bucket": "s3://bucket-1/p",
}
keys = st.sampled_from(
    [*GOOD, "instance_type", "gpu", "instance_count", "volume_size_gb", "spot", "max_wait",
     "max_runtime", "keep_alive", "subnets", "security_group_ids", "kms_key", "tags",
     "environment", "checkpoint_s3_uri", "aws_access_key_id", "secrets", "unknown"]
)  # fmt: skip
gpus = st.sampled_from(["T4:1", "A10G:3", "A100:8", "H100:2", None])


@pytest.fixture(scope="module")
def emulator() -> Iterator[SageMakerEmulator]:
    with SageMakerEmulator(mode="scripted") as running:
        yield running


def build(operator: StepOperator, info: StepRunInfo) -> object:
    assert isinstance(operator, SageMakerStepOperator)
    return operator.create_request(info, ["python", "-m", "x"], operator.job_environment(info))


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(keys, VALUES, max_size=4), gpus)
@example({}, None)  # the good table itself reaches the request builder
@example({}, "A10G:1")
def test_any_table_is_accepted_or_refused_without_an_api_call(
    emulator: SageMakerEmulator, changes: dict[str, Any], gpu: str | None
) -> None:
    before = len(emulator.requests.list())
    check_operator_table(
        "sagemaker",
        {**GOOD, **changes},
        gpu=gpu,
        artifact_uri="s3://bucket-1/p/p/r/s/1",
        build=build,
    )
    assert len(emulator.requests.list()) == before
