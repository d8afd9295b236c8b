"""The launch itself: warm up, adopt or submit, watch, and cancel on an interrupt.

:class:`LaunchEngine` is what :meth:`StepOperator.launch` runs. It holds all of the engine's
state for one operator (inside its :class:`~steplift.launch.control.ControlPlane`), so a
flavor's own attributes can never collide with it. Interrupts: Ctrl-C or SIGTERM is held
while the flavor warms up (an import cut in half breaks the process), the first one cancels
the job and waits for the provider to confirm, a second one stops waiting and detaches.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

from steplift.errors import StepCancelled
from steplift.interrupts import Terminated, deferred_interrupts, sigterm_as_interrupt
from steplift.launch.control import ControlPlane
from steplift.launch.observer import LaunchObserver
from steplift.launch.submission import find_adoptable, submit_once
from steplift.launch.watch import watch
from steplift.models import JobHandle, JobStatus, StepRunInfo

if TYPE_CHECKING:
    from steplift.operator import StepOperator


class LaunchEngine:
    """Runs the launches of one operator, calling its primitives through a control plane."""

    def __init__(self, operator: StepOperator) -> None:
        self.control = ControlPlane(operator)
        """The operator's calls as launches make them (the call pool and status batcher)."""

    def launch(
        self,
        info: StepRunInfo,
        entrypoint_command: list[str],
        observer: LaunchObserver,
        done_signal: Callable[[], bool] | None,
    ) -> None:
        """Run the step attempt as a job and wait until it ends (see ``StepOperator.launch``)."""
        with self.control.launch_in_flight():
            self._launch(info, entrypoint_command, observer, done_signal)

    def _launch(
        self,
        info: StepRunInfo,
        entrypoint_command: list[str],
        observer: LaunchObserver,
        done_signal: Callable[[], bool] | None,
    ) -> None:
        control = self.control
        handle: JobHandle | None = None
        with sigterm_as_interrupt():
            try:
                with deferred_interrupts():
                    control.operator.warm_up()
                handle = find_adoptable(control, info, observer)
                adopted = handle is not None
                if handle is None:
                    handle = submit_once(control, info, entrypoint_command, observer)
                observer.on_job(handle, adopted)
                watch(control, info, handle, observer, done_signal)
            except KeyboardInterrupt as interrupt:
                signal_number = (
                    interrupt.signal_number if isinstance(interrupt, Terminated) else signal.SIGINT
                )
                self._stop_after_interrupt(info, handle, observer, int(signal_number))

    def lookup(
        self, info: StepRunInfo, observer: LaunchObserver
    ) -> tuple[JobHandle, JobStatus] | None:
        """The job of this step attempt and its status, if there is one (transient errors
        waited out within the budget)."""
        handle = self.control.find_job_patiently(info, observer)
        if handle is None:
            return None
        return handle, self.control.status_patiently(handle, observer)

    def _stop_after_interrupt(
        self,
        info: StepRunInfo,
        handle: JobHandle | None,
        observer: LaunchObserver,
        signal_number: int,
    ) -> None:
        """Cancel the job and wait for the provider to confirm; always raises StepCancelled."""
        name = signal.Signals(signal_number).name
        if handle is None:
            # The interrupt may have landed after the create call went through.
            handle = find_adoptable(self.control, info, observer)
            if handle is None:
                raise StepCancelled(
                    f"interrupted by {name} before a job was submitted", signal_number=signal_number
                ) from None
        try:
            final = self.control.cancel_and_confirm(handle, observer)
        except KeyboardInterrupt:
            raise StepCancelled(
                f"interrupted twice: stopped waiting for job {handle.name} to confirm its cancel; "
                f"check it with `steplift status {info.run}` or cancel it again with "
                f"`steplift cancel {info.run}`",
                handle=handle,
                signal_number=signal_number,
                confirmed=False,
            ) from None
        state = final.state.value if final else "not yet confirmed"
        raise StepCancelled(
            f"interrupted by {name}: cancelled job {handle.name} ({state})",
            handle=handle,
            signal_number=signal_number,
            confirmed=final is not None,
        ) from None
