"""Property test: any vertex operator table is accepted or refused with one ConfigError
naming the field, and building the CustomJob from it sends nothing to the emulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from steplift.errors import ConfigError
from steplift.models import Resources, StepRunInfo
from steplift.registry import get_flavor
from steplift_vertex.emulator.server import VertexEmulator

GOOD = {"project": "my-project", "image": "img", "staging_bucket": "gs://bkt/x"}
scalars = st.none() | st.booleans() | st.integers(-5, 10**6) | st.text(max_size=30)
values = (
    scalars
    | st.lists(scalars, max_size=3)
    | st.dictionaries(st.text(max_size=10), scalars, max_size=3)
)
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


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(keys, values, max_size=4), gpus)
@example({}, None)  # the good table itself reaches the request builder
@example({}, "A100:8")
def test_any_table_is_accepted_or_refused_without_an_api_call(
    emulator: VertexEmulator, changes: dict[str, Any], gpu: str | None
) -> None:
    before = len(emulator.requests.list())
    flavor = get_flavor("vertex")
    try:
        config = flavor.validate_config({**GOOD, **changes}, file="steplift.toml", operator="gcp")
    except ConfigError as error:
        assert error.field and "\n" not in str(error)
        assert str(error).startswith("steplift.toml: operator 'gcp': field ")
    else:
        operator = flavor.create(config)
        info = StepRunInfo(
            pipeline="p",
            run="r",
            step="s",
            artifact_uri="gs://bkt/x/p/r/s/1",
            resources=Resources(gpu=gpu) if gpu else Resources(),
        )
        try:
            operator.job_fields(info, ["python", "-m", "x"], operator.job_environment(info))  # type: ignore[attr-defined]
        except ConfigError as error:
            assert error.field and "\n" not in str(error)
    assert len(emulator.requests.list()) == before
