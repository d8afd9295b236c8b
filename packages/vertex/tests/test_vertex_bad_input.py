"""Property test: any vertex operator table is accepted or refused with one ConfigError
naming the field, and building the CustomJob from it sends nothing to the emulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from steplift.models import StepRunInfo
from steplift.operator import StepOperator
from steplift.testing.properties import VALUES, check_operator_table
from steplift_vertex.emulator.server import VertexEmulator
from steplift_vertex.operator import VertexStepOperator

GOOD = {"project": "my-project", "image": "img", "staging_bucket": "gs://bkt/x"}
keys = st.sampled_from(
    [
        *GOOD,
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
        "unknown",
    ]
)
gpus = st.sampled_from(["T4:1", "A100:3", "A100:8", "L4:2", "H100:8", None])


@pytest.fixture(scope="module")
def emulator() -> Iterator[VertexEmulator]:
    with VertexEmulator("scripted", gcs=False) as running:
        yield running


def build(operator: StepOperator, info: StepRunInfo) -> object:
    assert isinstance(operator, VertexStepOperator)
    return operator.job_fields(info, ["python", "-m", "x"], operator.job_environment(info))


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(keys, VALUES, max_size=4), gpus)
@example({}, None)  # the good table itself reaches the request builder
@example({}, "A100:8")
def test_any_table_is_accepted_or_refused_without_an_api_call(
    emulator: VertexEmulator, changes: dict[str, Any], gpu: str | None
) -> None:
    before = len(emulator.requests.list())
    check_operator_table(
        "vertex", {**GOOD, **changes}, gpu=gpu, artifact_uri="gs://bkt/x/p/r/s/1", build=build
    )
    assert len(emulator.requests.list()) == before
