"""One operator's control-plane calls, made the way every launch makes them.

Each call runs on the :class:`~steplift.launch.calls.CallPool`, status questions are shared
through the :class:`~steplift.launch.batching.StatusBatcher` when the flavor can answer many
at once, and transient errors are waited out within the budget
(:func:`~steplift.launch.patience.patiently`). The watch loop, the submission and the launch
itself go through here and never call the operator's primitives directly.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from steplift.launch.batching import StatusBatcher
from steplift.launch.calls import CallPool
from steplift.launch.observer import LaunchObserver
from steplift.launch.patience import patiently
from steplift.models import JobHandle, JobStatus, StepRunInfo

if TYPE_CHECKING:
    from steplift.operator import StepOperator

T = TypeVar("T")


class ControlPlane:
    """The engine's shared state for one operator (its call pool and status batcher) and the
    careful calls built on it.

    The operator's ``policy``, ``clock`` and ``sleep`` are read at each use, so an operator
    whose policy is replaced (tests do) is run with the new one.
    """

    def __init__(self, operator: StepOperator) -> None:
        self.operator = operator
        """The operator whose primitives are called."""
        self._pool = CallPool()
        self._batcher_lock = threading.Lock()
        self._batcher: StatusBatcher | None = None

    @property
    def in_flight(self) -> int:
        """The operator's launches in flight right now."""
        return self._pool.in_flight

    @property
    def status_rounds(self) -> int:
        """Shared status calls made so far (0 without ``batched_status``; for benchmarks)."""
        return self._batcher.calls if self._batcher is not None else 0

    def launch_in_flight(self) -> contextlib.AbstractContextManager[None]:
        """Count one launch; the call pool lives while any launch of the operator does."""
        workers = self.operator.policy.call_workers
        return self._pool.launch_in_flight(workers, f"steplift-{self.operator.name}")

    def call(self, function: Callable[[], T]) -> T:
        """Make one provider or store call (on the pool while a launch is in flight)."""
        return self._pool.run(function)

    def patiently(self, call: Callable[[], T], what: str, observer: LaunchObserver) -> T:
        """Make a control-plane call, waiting out transient errors within the budget."""
        operator = self.operator
        return patiently(
            call,
            what,
            observer,
            policy=operator.policy,
            is_transient=operator.is_transient_error,
            clock=operator.clock,
            sleep=operator.sleep,
        )

    def status(self, handle: JobHandle) -> JobStatus:
        """The job's status: on its own, or in the batch of every launch waiting right now."""
        operator = self.operator
        if not operator.policy.batched_status:
            return self.call(lambda: operator.get_status(handle))
        with self._batcher_lock:
            if self._batcher is None:
                self._batcher = StatusBatcher(
                    lambda handles: self.call(lambda: operator.get_statuses(handles)),
                    lambda one: self.call(lambda: operator.get_status(one)),
                    gather=operator.policy.status_gather,
                )
        return self._batcher.status(handle)

    def status_patiently(self, handle: JobHandle, observer: LaunchObserver) -> JobStatus:
        """The job's current status, transient errors waited out within the budget."""
        return self.patiently(
            lambda: self.status(handle), f"asking for the status of {handle.name}", observer
        )

    def find_job_patiently(self, info: StepRunInfo, observer: LaunchObserver) -> JobHandle | None:
        """``find_job``, transient errors waited out within the budget."""
        return self.patiently(
            lambda: self.call(lambda: self.operator.find_job(info)),
            "looking for the job",
            observer,
        )

    def cancel_and_confirm(self, handle: JobHandle, observer: LaunchObserver) -> JobStatus | None:
        """Cancel, then poll (bounded by ``cancel_timeout``) until the provider confirms."""
        operator = self.operator
        self.patiently(
            lambda: self.call(lambda: operator.cancel(handle)),
            f"cancelling {handle.name}",
            observer,
        )
        give_up = operator.clock() + operator.policy.cancel_timeout
        delays = operator.policy.poll.delays()
        while True:
            status = self.status_patiently(handle, observer)
            observer.on_status(status)
            if status.state.is_terminal:
                return status
            if operator.clock() >= give_up:
                observer.on_warning(
                    f"{handle.name}: the provider did not confirm the cancel within "
                    f"{operator.policy.cancel_timeout:g} s"
                )
                return None
            operator.sleep(max(0.0, min(next(delays), give_up - operator.clock())))

    def stream_logs(
        self, handle: JobHandle, cursor: str | None, observer: LaunchObserver
    ) -> str | None:
        """Hand new log lines to the observer; return the next cursor (logs are best effort)."""
        try:
            chunk = self.call(lambda: self.operator.read_logs(handle, cursor))
        except Exception as error:  # logs are best effort: never lose track of a paid job
            observer.on_warning(f"could not read logs of {handle.name}: {error}")
            return cursor
        for line in chunk.lines:
            observer.on_log(line)
        return chunk.cursor
