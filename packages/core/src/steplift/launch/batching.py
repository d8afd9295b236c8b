"""Status questions of concurrent launches, answered together: the :class:`StatusBatcher`."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from steplift.models import JobHandle, JobStatus


class StatusBatcher:
    """Coalesces the status questions of concurrent launches into one ``get_statuses`` call.

    No thread and no timer of its own: the first launch to ask while no call is in flight
    makes the call for everyone waiting at that moment (a group commit), after a ``gather``
    pause (seconds, a few milliseconds) in which the launches that woke with it join; those
    who ask during the call are answered by the next one, which one of them makes. Launches
    that poll on the same schedule thus share a call per round, however many they are.
    """

    def __init__(
        self,
        fetch: Callable[[Sequence[JobHandle]], dict[str, JobStatus]],
        fetch_one: Callable[[JobHandle], JobStatus],
        gather: float = 0.0,
    ) -> None:
        self._fetch = fetch
        self._fetch_one = fetch_one
        self._gather = gather
        self._changed = threading.Condition()
        self._waiting: list[_StatusSlot] = []
        self._busy = False
        self.calls = 0
        """Batch calls made so far (for benchmarks)."""

    def status(self, handle: JobHandle) -> JobStatus:
        """The status of ``handle`` from the next batch call (which this thread may make)."""
        slot = _StatusSlot(handle)
        with self._changed:
            self._waiting.append(slot)
            while self._busy and not slot.answered:
                self._changed.wait()
            if slot.answered:
                return slot.result()
            self._busy = True
        try:
            with self._changed:
                if self._gather:
                    # One short, bounded pause lets the launches that wake with this one
                    # join its call instead of making the next.
                    self._changed.wait(self._gather)
                batch, self._waiting = self._waiting, []
        except BaseException:  # interrupted (Ctrl-C) before the call: hand the turn on
            with self._changed:
                self._busy = False
                self._changed.notify_all()
            raise
        self._answer(batch)
        return slot.result()

    def _answer(self, batch: list[_StatusSlot]) -> None:
        try:
            unique = {slot.handle.job_id: slot.handle for slot in batch}
            self.calls += 1
            failure: Exception | None = None
            statuses: dict[str, JobStatus] = {}
            try:
                statuses = self._fetch(list(unique.values()))
            except Exception as error:  # each launch weighs it (transient or not) itself
                failure = error
            for slot in batch:
                found = statuses.get(slot.handle.job_id)
                if failure is not None:
                    slot.fail(failure)
                elif found is not None:
                    slot.answer(found)
                else:  # not in the list's answer: ask about this one alone
                    try:
                        slot.answer(self._fetch_one(slot.handle))
                    except Exception as error:
                        slot.fail(error)
        except BaseException:
            # Interrupted (Ctrl-C lands in the main thread): the others ask again.
            with self._changed:
                self._waiting = [slot for slot in batch if not slot.answered] + self._waiting
            raise
        finally:
            with self._changed:
                self._busy = False
                self._changed.notify_all()


class _StatusSlot:
    def __init__(self, handle: JobHandle) -> None:
        self.handle = handle
        self.answered = False
        self._status: JobStatus | None = None
        self._error: Exception | None = None

    def answer(self, status: JobStatus) -> None:
        self._status, self.answered = status, True

    def fail(self, error: Exception) -> None:
        self._error, self.answered = error, True

    def result(self) -> JobStatus:
        if self._error is not None:
            raise self._error
        assert self._status is not None
        return self._status
