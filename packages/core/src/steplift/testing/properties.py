"""Shared pieces of the bad-input property tests every flavor runs (needs hypothesis).

@given(st.dictionaries(keys, VALUES, max_size=4), gpus)
def test_any_table(emulator, changes, gpu):
    before = len(emulator.requests.list())
    check_operator_table("vertex", {**GOOD, **changes}, gpu=gpu, artifact_uri=..., build=...)
    assert len(emulator.requests.list()) == before
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from steplift.errors import ConfigError
from steplift.models import Resources, StepRunInfo
from steplift.operator import StepOperator
from steplift.registry import get_flavor

SCALARS = st.none() | st.booleans() | st.integers(-5, 10**6) | st.text(max_size=30)
"""Values a config file can hold at a leaf, including wrong-typed ones."""

VALUES = (
    SCALARS
    | st.lists(SCALARS, max_size=3)
    | st.dictionaries(st.text(max_size=10), SCALARS, max_size=3)
)
"""Any value a config table can hold (one level of nesting)."""

Build = Callable[[StepOperator, StepRunInfo], object]
"""Builds the provider request for a step (no API call); ConfigError for bad input."""


def check_operator_table(
    flavor_name: str,
    table: dict[str, Any],
    *,
    gpu: str | None,
    artifact_uri: str,
    build: Build,
) -> None:
    """An operator table is accepted, or refused with one ConfigError naming the field.

    When accepted, building a request from it either works or is refused the same way.
    """
    flavor = get_flavor(flavor_name)
    try:
        config = flavor.validate_config(table, file="steplift.toml", operator="op")
    except ConfigError as error:
        assert error.field and "\n" not in str(error), str(error)
        assert str(error).startswith("steplift.toml: operator 'op': field "), str(error)
        return
    operator = flavor.create(config)
    info = StepRunInfo(
        pipeline="p",
        run="r",
        step="s",
        artifact_uri=artifact_uri,
        resources=Resources(gpu=gpu) if gpu else Resources(),
    )
    try:
        build(operator, info)
    except ConfigError as error:
        assert error.field and "\n" not in str(error), str(error)
