"""Riding out a storm: transient provider errors waited out within the transient budget.

A throttled or briefly unreachable control plane slows a launch down instead of failing it;
only once calls have kept failing for ``LaunchPolicy.transient_budget`` seconds does the
launch give up, with :class:`LostContact` when the job may still be running.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from steplift.errors import LostContact
from steplift.launch.observer import LaunchObserver
from steplift.launch.policy import LaunchPolicy
from steplift.models import JobHandle
from steplift.polling import Clock, Sleep

T = TypeVar("T")


def patiently(
    call: Callable[[], T],
    what: str,
    observer: LaunchObserver,
    *,
    policy: LaunchPolicy,
    is_transient: Callable[[Exception], bool],
    clock: Clock,
    sleep: Sleep,
) -> T:
    """Make a control-plane call, waiting out transient errors within the budget.

    The waits follow the poll policy; each is reported to ``observer`` as a warning naming
    ``what`` was being done. A non-transient error, or a transient one past the budget, is
    raised as it is.
    """
    delays = policy.poll.delays()
    give_up: float | None = None
    while True:
        try:
            return call()
        except Exception as error:
            if not is_transient(error):
                raise
            now = clock()
            give_up = now + policy.transient_budget if give_up is None else give_up
            if now >= give_up:
                raise
            delay = min(next(delays), give_up - now)
            observer.on_warning(f"{what} failed ({error}); trying again in {delay:g} s")
            sleep(delay)


def lost_contact(
    flavor: str, budget: float, handle: JobHandle, run: str, error: Exception
) -> LostContact:
    """The error a launch raises when the budget ran out while its job ran."""
    return LostContact(
        f"{flavor} kept failing for {budget:g} s while job "
        f"{handle.name} ran ({type(error).__name__}: {error}); the job may still be "
        f"running: check it with `steplift status {run}`, stop it with "
        f"`steplift cancel {run}`",
        handle=handle,
    )
