"""Bad-input tests: whatever a config file holds, the flavor accepts it or refuses it with one
ConfigError naming the field, and sends nothing to the provider while doing so.

Two fixtures feed them: ``invalid_configs`` (raw configs the flavor must refuse) and
``bad_input`` (a `BadInputCase`: a good operator table, the fields to vary, GPU requests, the
provider's request builder and a count of the requests the backend received). The property
test draws any change of up to four fields to any value (`VALUES`) with any GPU request:
validating and creating the operator, then building the provider request (no call), either
works or fails with one ConfigError naming the field; the backend receives no request.
Needs hypothesis (core's ``dev`` extra).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from steplift.errors import ConfigError
from steplift.models import Resources, StepRunInfo
from steplift.operator import StepOperator
from steplift.registry import get_flavor
from steplift.testing.conformance.backend import ConformanceBackend
from steplift.testing.conformance.base import ConformanceBase

__all__ = [
    "SCALARS",
    "VALUES",
    "BadInputCase",
    "BadInputTests",
    "Build",
    "check_operator_table",
]

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


@dataclass(frozen=True)
class BadInputCase:
    """What the bad-input property test needs of a flavor (its ``bad_input`` fixture)."""

    good: Mapping[str, Any]
    """An operator table the flavor accepts (no ``flavor`` key): every drawn table is this one
    with up to four fields changed, so the request builder is reached often."""
    fields: Sequence[str]
    """Further config fields to change (the good table's fields and an unknown one are added)."""
    gpus: Sequence[str | None]
    """GPU requests (``Resources.gpu``) to draw from; None: no GPU."""
    example_gpus: Sequence[str]
    """GPU requests always tried with the good table as it is (no GPU is always tried too)."""
    artifact_uri: str
    """The step attempt's artifact folder, in the flavor's store."""
    build: Build
    """Builds the provider request for an operator and step (no API call)."""
    requests: Callable[[], int]
    """How many requests the backend (emulator) has received so far."""
    max_examples: int = 100
    """Hypothesis examples to draw."""


class BadInputTests(ConformanceBase):
    """Configs refused early, and any config refused or accepted without a call."""

    @pytest.fixture
    def invalid_configs(self) -> list[dict[str, Any]]:
        """Raw configs the flavor must refuse (flavors override this fixture)."""
        raise NotImplementedError("the flavor's conformance class must provide `invalid_configs`")

    @pytest.fixture
    def bad_input(self) -> BadInputCase:
        """The flavor's case for the bad-input property test (flavors override this fixture)."""
        raise NotImplementedError("the flavor's conformance class must provide `bad_input`")

    def test_invalid_config_is_refused_with_zero_api_calls(
        self, backend: ConformanceBackend, invalid_configs: list[dict[str, Any]]
    ) -> None:
        assert invalid_configs, "a flavor must name at least one config it refuses"
        flavor = get_flavor(self.flavor)
        before = backend.api_calls()
        for fields in invalid_configs:
            with pytest.raises(ConfigError) as caught:
                flavor.validate_config(fields, file="steplift.toml", operator="under-test")
            error = caught.value
            assert error.file == "steplift.toml" and error.operator == "under-test"
            assert error.field, f"the error for {fields} names no field: {error}"
            assert str(error).count("\n") == 0
        assert backend.api_calls() == before

    def test_any_operator_table_is_accepted_or_refused_without_an_api_call(
        self, bad_input: BadInputCase
    ) -> None:
        case = bad_input
        keys = st.sampled_from(list(dict.fromkeys([*case.good, *case.fields, "unknown"])))

        # Built here, not at import: the fields, GPUs and example count are the flavor's.
        @settings(max_examples=case.max_examples)
        @given(st.dictionaries(keys, VALUES, max_size=4), st.sampled_from(list(case.gpus)))
        def any_table(changes: dict[str, Any], gpu: str | None) -> None:
            before = case.requests()
            check_operator_table(
                self.flavor,
                {**case.good, **changes},
                gpu=gpu,
                artifact_uri=case.artifact_uri,
                build=case.build,
            )
            assert case.requests() == before

        for gpu in [None, *case.example_gpus]:  # the good table itself reaches the builder
            any_table = example({}, gpu)(any_table)
        any_table()
