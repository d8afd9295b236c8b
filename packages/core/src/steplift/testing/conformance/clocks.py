"""Virtual clocks the conformance suite builds operators with: no test sleeps real seconds."""

from __future__ import annotations

import threading
import time

__all__ = ["ConformanceClock", "LockstepClock"]


class ConformanceClock:
    """A virtual clock: ``sleep`` advances it at once, with an optional short real pause.

    Executing backends (real subprocesses) need a little real time to make progress between
    polls; ``real_pause`` caps that per sleep, so no test ever sleeps for real seconds.
    """

    def __init__(self, real_pause: float = 0.02) -> None:
        self.time = 1_000.0
        self.real_pause = real_pause
        self.sleeps: list[float] = []

    def now(self) -> float:
        """The virtual time."""
        return self.time

    def sleep(self, seconds: float) -> None:
        """Advance the virtual time by ``seconds``."""
        self.sleeps.append(seconds)
        self.time += seconds
        if self.real_pause:
            time.sleep(min(seconds, self.real_pause))


class LockstepClock:
    """Virtual time shared by concurrent launches, as a discrete-event simulation: it moves
    on only while every launch sleeps, straight to the earliest wake-up, so launches on the
    same poll schedule wake at the same moment, as real ones started together do.

    Each launching thread calls :meth:`leave` when its launch ended.
    """

    def __init__(self, launches: int, stall_timeout: float = 30.0) -> None:
        self.time = 0.0
        self.sleeps = 0
        self.moments = 1
        """Distinct virtual times at which launches woke (the start included)."""
        self._active = launches
        self._wakes: list[float] = []
        self._changed = threading.Condition()
        self._stall_timeout = stall_timeout

    def now(self) -> float:
        with self._changed:
            return self.time

    def sleep(self, seconds: float) -> None:
        with self._changed:
            self.sleeps += 1
            wake = self.time + seconds
            self._wakes.append(wake)
            self._advance()
            woke = self._changed.wait_for(lambda: self.time >= wake, self._stall_timeout)
            self._wakes.remove(wake)
        assert woke, "the virtual clock stalled"

    def leave(self) -> None:
        """A launch ended: the others need not wait for it any more."""
        with self._changed:
            self._active -= 1
            self._advance()

    def _advance(self) -> None:
        pending = [wake for wake in self._wakes if wake > self.time]
        if pending and len(pending) == self._active:
            self.time = min(pending)
            self.moments += 1
            self._changed.notify_all()
