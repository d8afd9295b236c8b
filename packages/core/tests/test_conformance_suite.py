"""The conformance suite itself: its themed mixins make one class, the guard sees through
them, and the bad-input property catches a flavor that calls out or fails badly."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from steplift.errors import ConfigError
from steplift.models import StepRunInfo
from steplift.operator import StepOperator
from steplift.testing import BadInputCase, StepOperatorConformance
from steplift.testing.conformance import (
    BadInputTests,
    CheckpointTests,
    InterruptTests,
    LifecycleTests,
    MultiNodeTests,
    SecretTests,
    StormTests,
)

MIXINS = [
    LifecycleTests,
    CheckpointTests,
    InterruptTests,
    BadInputTests,
    MultiNodeTests,
    StormTests,
    SecretTests,
]


def standard_tests(cls: type) -> set[str]:
    return {name for name, _ in inspect.getmembers(cls, inspect.isfunction) if name[:5] == "test_"}


def test_the_suite_is_every_mixin_and_the_guard() -> None:
    themed = set().union(*(standard_tests(mixin) for mixin in MIXINS))
    guard = "test_standard_tests_are_not_dropped_or_overridden"
    assert standard_tests(StepOperatorConformance) == themed | {guard}
    # Each test has one theme.
    assert sum(len(standard_tests(mixin)) for mixin in MIXINS) == len(themed)


def test_the_guard_refuses_a_dropped_test_from_any_mixin() -> None:
    # (Not "local": the coverage test maps each flavor to the one file that covers it.)
    class Drops(StepOperatorConformance):
        flavor = "guard-check"

        def test_multi_node_interrupt_stops_every_node(self) -> None:  # type: ignore[override]
            pass

    with pytest.raises(AssertionError, match="test_multi_node_interrupt_stops_every_node"):
        Drops().test_standard_tests_are_not_dropped_or_overridden()


def test_the_guard_accepts_a_strict_xfail_with_a_reason() -> None:
    class Declines(StepOperatorConformance):
        flavor = "guard-check"

        @pytest.mark.xfail(strict=True, reason="no secret store yet")
        def test_a_secret_reaches_the_step_and_nothing_else(self) -> None:  # type: ignore[override]
            raise AssertionError

    Declines().test_standard_tests_are_not_dropped_or_overridden()


class Local(BadInputTests):
    flavor = "local"


def local_case(tmp_path: Path, build: object, sent: list[str]) -> BadInputCase:
    return BadInputCase(
        good={"root": str(tmp_path)},
        fields=["working_dir", "max_runtime"],
        gpus=[None],
        example_gpus=[],
        artifact_uri=str(tmp_path / "a"),
        build=build,  # type: ignore[arg-type]
        requests=lambda: len(sent),
        max_examples=10,
    )


def test_the_bad_input_property_passes_a_quiet_builder(tmp_path: Path) -> None:
    def build(operator: StepOperator, info: StepRunInfo) -> object:
        if operator.config.max_runtime is not None and operator.config.max_runtime > 100:
            raise ConfigError("too long", field="max_runtime")
        return operator.job_environment(info)

    case = local_case(tmp_path, build, [])
    Local().test_any_operator_table_is_accepted_or_refused_without_an_api_call(case)


def test_the_bad_input_property_catches_a_builder_that_calls_out(tmp_path: Path) -> None:
    sent: list[str] = []

    def build(operator: StepOperator, info: StepRunInfo) -> object:
        sent.append(info.attempt_key)  # a request to the provider
        return None

    case = local_case(tmp_path, build, sent)
    with pytest.raises(AssertionError):
        Local().test_any_operator_table_is_accepted_or_refused_without_an_api_call(case)


def test_the_bad_input_property_catches_an_error_that_names_no_field(tmp_path: Path) -> None:
    def build(operator: StepOperator, info: StepRunInfo) -> object:
        raise ConfigError("something is wrong")

    case = local_case(tmp_path, build, [])
    with pytest.raises(AssertionError):
        Local().test_any_operator_table_is_accepted_or_refused_without_an_api_call(case)
