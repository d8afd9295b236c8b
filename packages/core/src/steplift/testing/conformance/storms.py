"""Reliability under a control-plane storm: throttles and 5xx slow steps down but fail or
duplicate nothing."""

from __future__ import annotations

import pytest

from steplift.launcher import StepLauncher, StepOptions, StepSpec
from steplift.operator import StepOperator
from steplift.runs import Run, RunIndex
from steplift.testing import steps
from steplift.testing.conformance.backend import ConformanceBackend
from steplift.testing.conformance.base import ConformanceBase

__all__ = ["StormTests"]


class StormTests(ConformanceBase):
    """A throttling, failing control plane."""

    def test_a_control_plane_storm_slows_steps_down_but_fails_or_duplicates_nothing(
        self, operator: StepOperator, backend: ConformanceBackend, index: RunIndex, run: Run
    ) -> None:
        before = backend.submissions()
        if not backend.storm(0.3, 0.05):
            pytest.skip(f"the {self.flavor} flavor has no control plane to throttle")
        try:
            launcher = StepLauncher(operator, index=index)
            for number in range(3):
                spec = StepSpec.for_function(steps.add_and_log, (number, number), {})
                value = launcher.run(spec, run=run, step=f"storm-{number}", options=StepOptions())
                assert value == 2 * number
        finally:
            backend.storm(0.0, 0.0)
        assert backend.submissions() == before + 3, "a create was repeated or lost"
