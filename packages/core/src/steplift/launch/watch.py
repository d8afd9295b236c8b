"""Waiting for a job to end: status polls, shared log reads, the result signal, deadlines.

One launch polls its job's status with the poll policy's backoff and hands status changes
and new log lines to its observer. Log reads and result-signal checks are paced by rates
one operator shares among its launches in flight, so a thousand launches cost no more in
store calls than a few. A queue time or runtime past its limit cancels the job; the job's
end is turned into a return (it succeeded) or a typed error.
"""

from __future__ import annotations

from collections.abc import Callable

from steplift.errors import StepCancelled, StepFailed, StepTimeout
from steplift.launch.control import ControlPlane
from steplift.launch.observer import LaunchObserver
from steplift.launch.patience import lost_contact
from steplift.models import JobHandle, JobStatus, StepRunInfo
from steplift.states import FailureKind, JobState


def watch(
    control: ControlPlane,
    info: StepRunInfo,
    handle: JobHandle,
    observer: LaunchObserver,
    done_signal: Callable[[], bool] | None = None,
) -> None:
    """Wait for ``handle`` to end; return if it succeeded, else raise why it did not."""
    operator = control.operator
    max_runtime = info.max_runtime or operator.config.max_runtime
    started = operator.clock()
    deadline = started + max_runtime if max_runtime else None
    max_queue = info.max_queue_time or operator.config.max_queue_time
    delays = operator.policy.poll.delays()
    cursor: str | None = None
    logs_due = started
    last: JobStatus | None = None
    while True:
        try:
            status = control.status_patiently(handle, observer)
        except Exception as error:
            if not operator.is_transient_error(error):
                raise
            raise lost_contact(
                operator.flavor, operator.policy.transient_budget, handle, info.run, error
            ) from error
        if status != last:
            observer.on_status(status)
            last = status
        if status.state.is_terminal or operator.clock() >= logs_due:
            cursor = control.stream_logs(handle, cursor, observer)
            logs_due = operator.clock() + control.in_flight / operator.policy.log_rate
        if status.state.is_terminal:
            conclude(handle, status, max_runtime)
            return
        if (
            max_queue is not None
            and status.state is JobState.PENDING
            and operator.clock() - started >= max_queue
        ):
            control.cancel_and_confirm(handle, observer)
            reason = status.message or status.provider_state
            raise StepFailed(
                f"job {handle.name} was still waiting to start after {max_queue:g} s "
                f"({reason}) and was cancelled",
                handle=handle,
                failure_kind=FailureKind.CAPACITY,
                provider_state=status.provider_state,
            )
        if deadline is not None and operator.clock() >= deadline:
            final = control.cancel_and_confirm(handle, observer)
            control.stream_logs(handle, cursor, observer)
            raise StepTimeout(
                f"job {handle.name} ran past its max runtime of {max_runtime:g} s and "
                f"was {'stopped' if final else 'asked to stop'}",
                handle=handle,
                max_runtime=max_runtime,
            )
        delay = next(delays)
        if deadline is not None:
            delay = max(0.0, min(delay, deadline - operator.clock()))
        if _sleep_unless_done(control, delay, done_signal):
            delays = operator.policy.poll.delays()  # the step ended: confirm it quickly


def _sleep_unless_done(
    control: ControlPlane, delay: float, done_signal: Callable[[], bool] | None
) -> bool:
    """Sleep ``delay`` seconds, checking ``done_signal`` in between; True if it fired."""
    operator = control.operator
    if done_signal is None:
        operator.sleep(delay)
        return False
    wake = operator.clock() + delay
    while (left := wake - operator.clock()) > 0:
        interval = max(
            operator.policy.signal_interval, control.in_flight / operator.policy.signal_rate
        )
        operator.sleep(min(interval, left))
        try:
            if control.call(done_signal):
                return True
        except Exception:  # the signal is a shortcut; the status poll stays the truth
            operator.sleep(max(0.0, wake - operator.clock()))
            return False
    return False


def conclude(handle: JobHandle, status: JobStatus, max_runtime: float | None) -> None:
    """Return if the ended job succeeded; else raise the typed error of how it ended."""
    if status.state is JobState.SUCCEEDED:
        return
    detail = f": {status.message}" if status.message else ""
    if status.state is JobState.CANCELLED:
        raise StepCancelled(f"job {handle.name} was cancelled{detail}", handle=handle)
    kind = status.failure_kind
    if kind is None:
        kind = FailureKind.USER_CODE if status.exit_code else FailureKind.INFRASTRUCTURE
    if kind is FailureKind.TIMEOUT:
        raise StepTimeout(
            f"job {handle.name} ran past its max runtime{detail}",
            handle=handle,
            max_runtime=max_runtime,
        )
    raise StepFailed(
        f"job {handle.name} failed ({kind.value}){detail}",
        handle=handle,
        failure_kind=kind,
        provider_state=status.provider_state,
    )
