"""Launching many step attempts at once on one operator, in shared virtual time (for the
batched-status and storm tests of the flavors)."""

from __future__ import annotations

import threading

from steplift.models import JobHandle, StepRunInfo
from steplift.operator import LaunchObserver, StepOperator
from steplift.testing.conformance.clocks import LockstepClock

__all__ = ["AllSubmitted", "launch_together"]


class AllSubmitted(LaunchObserver):
    """Holds each launch after its submit until every launch (the barrier's parties) has
    submitted, so that they all start polling together."""

    def __init__(self, barrier: threading.Barrier) -> None:
        self.barrier = barrier

    def on_job(self, handle: JobHandle, adopted: bool) -> None:
        self.barrier.wait()


def launch_together(
    operator: StepOperator,
    infos: list[StepRunInfo],
    command: list[str],
    *,
    hold_until_submitted: bool = True,
    timeout: float = 60.0,
) -> tuple[LockstepClock, list[BaseException]]:
    """Launch every step attempt at once on ``operator``, one thread each, in virtual time.

    The launches share a :class:`LockstepClock` (installed as the operator's clock and sleep),
    so those on the same poll schedule wake together as real ones do; with
    ``hold_until_submitted`` none polls before all have submitted. Returns the clock (its
    ``moments`` and ``sleeps``) and every error a launch raised; fails if a launch is still
    waiting after ``timeout`` seconds.
    """
    clock = LockstepClock(len(infos))
    operator.clock, operator.sleep = clock.now, clock.sleep
    observer = (
        AllSubmitted(threading.Barrier(len(infos), timeout=timeout))
        if hold_until_submitted
        else None
    )
    errors: list[BaseException] = []

    def launch(info: StepRunInfo) -> None:
        try:
            operator.launch(info, command, observer=observer)
        except BaseException as error:  # handed back to the test, never lost
            errors.append(error)
        finally:
            clock.leave()

    threads = [threading.Thread(target=launch, args=(info,), daemon=True) for info in infos]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "launches still waiting"
    return clock, errors
