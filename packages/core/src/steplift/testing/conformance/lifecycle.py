"""Lifecycle tests: a step succeeds, fails in user code or on the infrastructure, runs out of
time, and is adopted (never submitted twice) by a second launch or after a launcher crash."""

from __future__ import annotations

import pytest

from steplift.errors import StepFailed, StepTimeout
from steplift.launcher import StepLauncher, StepOptions, StepSpec
from steplift.models import JobHandle
from steplift.operator import RECEIPT, LaunchObserver, StepOperator
from steplift.runs import Run, RunIndex
from steplift.states import FailureKind, JobState
from steplift.store import join_uri
from steplift.testing import steps
from steplift.testing.conformance.backend import ConformanceBackend
from steplift.testing.conformance.base import ConformanceBase
from steplift.testing.conformance.clocks import ConformanceClock
from steplift.testing.conformance.recording import Recorder, eventually

__all__ = ["LifecycleTests"]


class LifecycleTests(ConformanceBase):
    """A step's life from submit to its end, and adoption instead of a second submit."""

    def test_success_returns_value_and_streams_logs(
        self, operator: StepOperator, backend: ConformanceBackend, index: RunIndex, run: Run
    ) -> None:
        recorder = Recorder()
        launcher = StepLauncher(operator, observer=recorder, index=index)
        spec = StepSpec.for_function(steps.add_and_log, (2, 3), {})
        before = backend.submissions()
        value = launcher.run(spec, run=run, step="add", options=StepOptions())
        assert value == 5
        assert "adding 2 and 3" in recorder.lines
        assert recorder.states[-1] is JobState.SUCCEEDED
        assert backend.submissions() == before + 1

    def test_user_failure_raises_step_failed_with_remote_traceback(
        self, operator: StepOperator, index: RunIndex, run: Run
    ) -> None:
        launcher = StepLauncher(operator, index=index)
        spec = StepSpec.for_function(steps.fail_with, ("the remote said no",), {})
        with pytest.raises(StepFailed) as caught:
            launcher.run(spec, run=run, step="fail", options=StepOptions())
        failure = caught.value
        assert failure.failure_kind is FailureKind.USER_CODE
        assert failure.remote_type == "builtins.RuntimeError"
        assert failure.remote_message == "the remote said no"
        assert failure.remote_traceback and "in fail_with" in failure.remote_traceback
        assert failure.handle is not None

    def test_infrastructure_failure_has_its_failure_kind(
        self, operator: StepOperator, backend: ConformanceBackend, index: RunIndex, run: Run
    ) -> None:
        expected: list[FailureKind] = []

        def break_it(handle: JobHandle) -> None:
            expected.append(backend.fail_infrastructure(operator, handle))

        recorder = Recorder(on_running=break_it)
        launcher = StepLauncher(operator, observer=recorder, index=index)
        spec = StepSpec.for_function(steps.sleep_for, (60,), {})
        with pytest.raises(StepFailed) as caught:
            launcher.run(spec, run=run, step="doomed", options=StepOptions())
        assert expected, "the job never reported RUNNING"
        assert caught.value.failure_kind is expected[0], str(caught.value)
        assert caught.value.failure_kind is not FailureKind.USER_CODE
        assert eventually(lambda: not backend.is_running(operator, recorder.handle))

    def test_max_runtime_stops_the_job_with_step_timeout(
        self,
        operator: StepOperator,
        backend: ConformanceBackend,
        index: RunIndex,
        run: Run,
        clock: ConformanceClock,
    ) -> None:
        recorder = Recorder()
        _, _, info, command, _ = self._prepare(
            operator, index, run, steps.sleep_for, 600, max_runtime=30
        )
        started = clock.now()
        with pytest.raises(StepTimeout) as caught:
            operator.launch(info, command, observer=recorder)
        assert caught.value.max_runtime == 30
        assert clock.now() - started >= 30
        final = operator.get_status(recorder.handle)
        assert final.state in (JobState.CANCELLED, JobState.FAILED)
        assert eventually(lambda: not backend.is_running(operator, recorder.handle))

    def test_second_launch_adopts_the_first_job(
        self, operator: StepOperator, backend: ConformanceBackend, index: RunIndex, run: Run
    ) -> None:
        launcher, _, info, command, _ = self._prepare(operator, index, run, steps.add_and_log, 4, 5)
        before = backend.submissions()
        # Another launcher submitted the job and vanished before waiting for it.
        first = operator.submit(info, command, operator.job_environment(info))
        assert operator.find_job(info) == first
        recorder = Recorder()
        operator.launch(info, command, observer=recorder)
        assert recorder.handles == [(first, True)]
        assert backend.submissions() == before + 1
        # A relaunch after the step finished returns the stored result, submitting nothing.
        spec = StepSpec.for_function(steps.add_and_log, (4, 5), {})
        value = launcher.run(spec, run=run, step=info.step, options=StepOptions())
        assert value == 9
        assert backend.submissions() == before + 1

    def test_a_crashed_launcher_is_adopted_through_its_receipt(
        self, operator: StepOperator, backend: ConformanceBackend, index: RunIndex, run: Run
    ) -> None:
        launcher, spec, info, command, _ = self._prepare(
            operator, index, run, steps.add_and_log, 6, 7
        )
        before = backend.submissions()

        class Crash(BaseException):
            """The launcher process dying right after the job was created."""

        class CrashOnJob(LaunchObserver):
            def on_job(self, handle: JobHandle, adopted: bool) -> None:
                raise Crash

        with pytest.raises(Crash):
            operator.launch(info, command, observer=CrashOnJob())
        assert backend.submissions() == before + 1
        receipt = JobHandle.model_validate_json(
            operator.artifact_store.get(join_uri(info.artifact_uri, RECEIPT))
        )
        recorder = Recorder()
        operator.launch(info, command, observer=recorder)
        assert recorder.handles == [(receipt, True)]
        assert recorder.states[-1] is JobState.SUCCEEDED
        assert launcher.run(spec, run=run, step=info.step, options=StepOptions()) == 13
        assert backend.submissions() == before + 1
