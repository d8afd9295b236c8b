"""Property test: any sagemaker operator table is accepted or refused with one ConfigError
naming the field, and building requests from it sends nothing to the (emulated) service."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steplift.errors import ConfigError
from steplift.models import Resources, StepRunInfo
from steplift_sagemaker.emulator import SageMakerEmulator
from steplift_sagemaker.flavor import SageMakerFlavor
from steplift_sagemaker.operator import SageMakerStepOperator

GOOD = {
    "region": "us-east-1",
    "role_arn": "arn:aws:iam::123456789012:role/steplift",
    "image": "img",
    "bucket": "s3://bucket-1/p",
}
scalars = st.none() | st.booleans() | st.integers(-5, 10**6) | st.text(max_size=30)
values = (
    scalars
    | st.lists(scalars, max_size=3)
    | st.dictionaries(st.text(max_size=10), scalars, max_size=3)
)
keys = st.sampled_from(
    [
        *GOOD,
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
        "unknown",
    ]
)
gpus = st.sampled_from(["T4:1", "A10G:3", "A100:8", "H100:2", "Z1:1", "bad", None])


@pytest.fixture(scope="module")
def emulator() -> Iterator[SageMakerEmulator]:
    with SageMakerEmulator(mode="scripted") as running:
        yield running


@settings(
    max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(st.dictionaries(keys, values, max_size=4), gpus)
def test_any_table_is_accepted_or_refused_without_an_api_call(
    emulator: SageMakerEmulator, changes: dict[str, Any], gpu: str | None
) -> None:
    before = len(emulator.requests.list())
    fields = {**GOOD, **changes}
    flavor = SageMakerFlavor()
    try:
        config = flavor.validate_config(fields, file="steplift.toml", operator="gpu")
    except ConfigError as error:
        assert error.field and "\n" not in str(error)
        assert str(error).startswith("steplift.toml: operator 'gpu': field ")
    else:
        operator = flavor.create(config)
        assert isinstance(operator, SageMakerStepOperator)
        info = StepRunInfo(
            pipeline="p",
            run="r",
            step="s",
            artifact_uri="s3://bucket-1/p/p/r/s/1",
            resources=Resources(gpu=gpu)
            if gpu and ":" in gpu and not gpu.startswith("Z")
            else Resources(),
        )
        try:
            request = operator.create_request(
                info, ["python", "-m", "x"], operator.job_environment(info)
            )
        except ConfigError as error:
            assert error.field
        else:
            assert request["TrainingJobName"] == info.job_name(max_length=63)
    assert len(emulator.requests.list()) == before
