"""Property test: any azureml operator table is accepted or refused with one ConfigError
naming the field, and building the command job from it sends nothing to the emulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from steplift.models import StepRunInfo
from steplift.operator import StepOperator
from steplift.testing.properties import VALUES, check_operator_table
from steplift_azureml.emulator.service import AzureMLEmulator
from steplift_azureml.operator import AzureMLStepOperator

GOOD = {
    "subscription_id": "00000000-0000-0000-0000-000000000000",
    "resource_group": "ml-rg",
    "workspace": "ml-ws",
    "artifact_root": "azureblob://mystorage/steplift/root",
    "image": "python:3.11",
    "instance_type": "Standard_DS3_v2",
}
keys = st.sampled_from(
    [
        *GOOD,
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
        "unknown",
    ]
)
gpus = st.sampled_from(["A100:1", "A100:3", "V100:2", "T4:1", None])

pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")


@pytest.fixture(scope="module")
def emulator() -> Iterator[AzureMLEmulator]:
    with AzureMLEmulator("scripted") as running:
        yield running


def build(operator: StepOperator, info: StepRunInfo) -> object:
    assert isinstance(operator, AzureMLStepOperator)
    return operator.build_job(info, ["python", "-m", "x"], operator.job_environment(info))


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(keys, VALUES, max_size=4), gpus)
@example({}, None)  # the good table itself reaches the request builder
@example({}, "A100:8")
def test_any_table_is_accepted_or_refused_without_an_api_call(
    emulator: AzureMLEmulator, changes: dict[str, Any], gpu: str | None
) -> None:
    before = len(emulator.requests.list())
    uri = "azureblob://mystorage/steplift/root/1"
    check_operator_table("azureml", {**GOOD, **changes}, gpu=gpu, artifact_uri=uri, build=build)
    assert len(emulator.requests.list()) == before
