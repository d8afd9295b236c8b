"""`wait_until`: a bounded real-time wait for an emulator (or a job on it) to catch up."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

__all__ = ["wait_until"]


def wait_until(
    predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.05
) -> bool:
    """Poll `predicate` every `interval` seconds for at most `timeout`; its last answer."""
    deadline = time.monotonic() + timeout
    for _ in range(max(1, math.ceil(timeout / interval)) + 1):
        if predicate():
            return True
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    return predicate()
