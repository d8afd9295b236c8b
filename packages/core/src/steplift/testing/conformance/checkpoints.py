"""Checkpoint tests: an attempt broken by the infrastructure is retried and resumes from
what it checkpointed."""

from __future__ import annotations

from steplift.launcher import StepLauncher, StepOptions, StepSpec
from steplift.models import JobHandle
from steplift.operator import StepOperator
from steplift.runs import Run, RunIndex
from steplift.states import FailureKind
from steplift.testing import steps
from steplift.testing.conformance.backend import ConformanceBackend
from steplift.testing.conformance.base import ConformanceBase
from steplift.testing.conformance.recording import Recorder

__all__ = ["CheckpointTests"]


class CheckpointTests(ConformanceBase):
    """Retries resume from the step's checkpoint folder."""

    def test_a_transient_failure_is_retried_and_resumes_from_its_checkpoint(
        self, operator: StepOperator, backend: ConformanceBackend, index: RunIndex, run: Run
    ) -> None:
        broken: list[FailureKind] = []

        def break_it(handle: JobHandle) -> None:
            broken.append(backend.fail_infrastructure(operator, handle))

        recorder = Recorder(on_line=("checkpointed attempt 1", break_it))
        launcher = StepLauncher(operator, observer=recorder, index=index)
        spec = StepSpec.for_function(steps.resume_from_checkpoint, (), {})
        value = launcher.run(spec, run=run, step="resume", options=StepOptions(retries=1))
        assert broken, "the first attempt never checkpointed"
        assert value == ["1", "2"]
        assert [adopted for _, adopted in recorder.handles] == [False, False]
        assert [record.state for record in index.steps(run.name)] == ["FAILED", "SUCCEEDED"]
