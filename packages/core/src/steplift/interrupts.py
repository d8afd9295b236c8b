"""Ctrl-C and SIGTERM around work that must not be cut in half.

Light on purpose (no pydantic): ``steplift``'s lazy attribute imports use it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C while a launch is waiting."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(signal_number)
        self.signal_number = signal_number


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` for the duration (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, _frame: FrameType | None) -> None:
        raise Terminated(signum)

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


_holding = False
"""True while the main thread is inside :func:`deferred_interrupts`."""


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block ends, then deliver them (main thread only).

    For work that must not be cut in half. An import interrupted midway leaves a partly
    initialised module behind, and every later use of it in this process fails. Worse, an
    interrupt landing while pydantic builds a model's validator is swallowed ("Exception
    ignored") and leaves a validator whose patterns match nothing: a valid config is then
    refused and the Ctrl-C is lost. A block nested in another holds nothing of its own; the
    outermost delivers.
    """
    global _holding
    if threading.current_thread() is not threading.main_thread() or _holding:
        yield
        return
    received: list[int] = []

    def hold(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in (signal.SIGINT, signal.SIGTERM)}
    _holding = True
    try:
        yield
    finally:
        _holding = False
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if received:
            if received[0] == signal.SIGINT:
                raise KeyboardInterrupt
            raise Terminated(received[0])
