"""Interrupt tests: Ctrl-C or SIGTERM in the launcher cancels the remote job, confirmed."""

from __future__ import annotations

import signal

import pytest

from steplift.errors import StepCancelled
from steplift.interrupts import Terminated
from steplift.models import JobHandle
from steplift.operator import StepOperator
from steplift.runs import Run, RunIndex
from steplift.states import JobState
from steplift.testing import steps
from steplift.testing.conformance.backend import ConformanceBackend
from steplift.testing.conformance.base import ConformanceBase
from steplift.testing.conformance.recording import Recorder, eventually

__all__ = ["InterruptTests"]


class InterruptTests(ConformanceBase):
    """An interrupted launcher leaves no job running."""

    @pytest.mark.parametrize(
        ("interrupt", "exit_code"),
        [(KeyboardInterrupt, 130), (Terminated(signal.SIGTERM), 143)],
        ids=["ctrl-c", "sigterm"],
    )
    def test_interrupt_cancels_the_remote_job(
        self,
        operator: StepOperator,
        backend: ConformanceBackend,
        index: RunIndex,
        run: Run,
        interrupt: BaseException | type[BaseException],
        exit_code: int,
    ) -> None:
        def press(_handle: JobHandle) -> None:
            raise interrupt

        recorder = Recorder(on_running=press)
        _, _, info, command, _ = self._prepare(operator, index, run, steps.sleep_for, 60)
        with pytest.raises(StepCancelled) as caught:
            operator.launch(info, command, observer=recorder)
        assert caught.value.exit_code == exit_code
        assert caught.value.confirmed
        assert operator.get_status(recorder.handle).state is JobState.CANCELLED
        assert eventually(lambda: not backend.is_running(operator, recorder.handle))
