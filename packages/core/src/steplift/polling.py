"""How often to ask a provider about a job: fast at first, backing off, capped."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

Clock = Callable[[], float]
"""A monotonic clock in seconds (``time.monotonic`` outside tests)."""

Sleep = Callable[[float], None]
"""Sleeps for the given seconds (``time.sleep`` outside tests)."""

DEFAULT_CLOCK: Clock = time.monotonic
DEFAULT_SLEEP: Sleep = time.sleep


@dataclass(frozen=True)
class PollPolicy:
    """Delays between status polls: ``initial``, then times ``factor``, never over ``maximum``.

    The default asks at 0, 1, 3, 7, 15, 31, 61 s, then every 30 s: after the first minute a
    job costs at most one control-plane call per 30 s, while the launcher's result-record
    signal (checked between polls) keeps the completion lag low.
    """

    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 30.0

    def __post_init__(self) -> None:
        if self.initial <= 0:
            raise ValueError(f"PollPolicy.initial must be positive, not {self.initial}")
        if self.factor < 1:
            raise ValueError(f"PollPolicy.factor must be at least 1, not {self.factor}")
        if self.maximum < self.initial:
            raise ValueError(
                f"PollPolicy.maximum ({self.maximum}) must not be below initial ({self.initial})"
            )

    def delays(self) -> Iterator[float]:
        """An endless sequence of delays following the policy."""
        delay = self.initial
        while True:
            yield delay
            delay = min(delay * self.factor, self.maximum)
