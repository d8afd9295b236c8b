"""The retry policy: which failures are retried, and the spot → on-demand fallback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from steplift.errors import StepFailed
from steplift.flavors.local import FLAVOR, LocalStepOperator
from steplift.launcher import StepLauncher, StepOptions, StepSpec
from steplift.models import JobHandle, JobStatus, Resources, StepRunInfo
from steplift.runs import Run, RunIndex
from steplift.states import FailureKind, JobState
from steplift.testing import steps


class ReclaimingSpot(LocalStepOperator):
    """Local jobs, except that spot capacity is always reclaimed before the step starts."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spot_attempts: list[int] = []

    def submit(
        self, info: StepRunInfo, entrypoint_command: list[str], environment: dict[str, str]
    ) -> JobHandle:
        if info.resources.use_spot(False):
            self.spot_attempts.append(info.attempt)
            return JobHandle(
                flavor="local", job_id=f"spot-{info.attempt}", name=f"spot-{info.attempt}"
            )
        return super().submit(info, entrypoint_command, environment)

    def get_status(self, handle: JobHandle) -> JobStatus:
        if handle.job_id.startswith("spot-"):
            return JobStatus(
                state=JobState.FAILED,
                provider_state="PREEMPTED",
                message="spot capacity reclaimed",
                failure_kind=FailureKind.PREEMPTED,
            )
        return super().get_status(handle)


@pytest.fixture
def operator(tmp_path: Path) -> ReclaimingSpot:
    flavor = FLAVOR
    return ReclaimingSpot(flavor.validate_config({"root": str(tmp_path / "local")}))


def run(operator: ReclaimingSpot, **options: Any) -> Any:
    launcher = StepLauncher(operator, index=RunIndex(operator.root / "runs"))
    spec = StepSpec.for_function(steps.add_and_log, (1, 2), {})
    return launcher.run(spec, run=Run("retries"), step="s", options=StepOptions(**options))


def test_after_k_preemptions_the_step_falls_back_to_on_demand(operator: ReclaimingSpot) -> None:
    value = run(operator, resources=Resources(spot=True), retries=3, spot_fallback_after=2)
    assert value == 3
    assert operator.spot_attempts == [1, 2]  # attempt 3 ran on demand


def test_without_fallback_preemptions_use_up_the_retries(operator: ReclaimingSpot) -> None:
    with pytest.raises(StepFailed) as caught:
        run(operator, resources=Resources(spot=True), retries=2)
    assert caught.value.failure_kind is FailureKind.PREEMPTED
    assert operator.spot_attempts == [1, 2, 3]


def test_user_code_failures_are_retried_only_when_asked(operator: ReclaimingSpot) -> None:
    launcher = StepLauncher(operator, index=RunIndex(operator.root / "runs"))
    spec = StepSpec.for_function(steps.fail_with, ("no",), {})
    with pytest.raises(StepFailed):
        launcher.run(spec, run=Run("user"), step="f", options=StepOptions(retries=2))
    assert [r.attempt for r in launcher.index.steps("user")] == [1]
    with pytest.raises(StepFailed):
        launcher.run(
            spec, run=Run("user2"), step="f", options=StepOptions(retries=2, retry_user_code=True)
        )
    assert [r.attempt for r in launcher.index.steps("user2")] == [1, 2, 3]
