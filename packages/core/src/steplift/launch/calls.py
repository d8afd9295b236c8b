"""Where a launch's provider and store calls run: in place, or on one operator's small pool."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from typing import TypeVar

T = TypeVar("T")


class CallPool:
    """A few threads that make the provider and store calls of one operator's launches.

    With a thousand launches in one process, only the pool's threads ever hold the SDKs' deep
    call stacks (``LaunchPolicy.call_workers``). The pool lives while any launch is in flight
    and is shut down when the last one ends; outside a launch (``steplift cancel``, a lookup)
    calls are made in place. It also counts the launches in flight, which share the signal
    and log rates.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        """Launches in flight right now."""
        return self._in_flight

    @contextlib.contextmanager
    def launch_in_flight(self, workers: int | None, thread_name_prefix: str) -> Iterator[None]:
        """Count one launch; start the pool (of ``workers`` threads; None: no pool) if needed."""
        with self._lock:
            self._in_flight += 1
            if workers and self._pool is None:
                self._pool = ThreadPoolExecutor(workers, thread_name_prefix=thread_name_prefix)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
                idle = None
                if self._in_flight == 0:
                    idle, self._pool = self._pool, None
            if idle is not None:
                idle.shutdown(wait=False)

    def run(self, function: Callable[[], T]) -> T:
        """Make one provider or store call: on the pool while it lives, else in place.

        These calls never nest, so the pool cannot deadlock. An interrupt while waiting
        lets the call finish first (one bounded HTTP call), so it lands after it, as without
        the pool: a create that went through is then found and cancelled, not left behind.
        """
        with self._lock:
            pool = self._pool
        if pool is None:  # no launch in flight (or no pool): in place
            return function()
        try:
            future = pool.submit(function)
        except RuntimeError:  # the last launch just ended and shut the pool down
            return function()
        try:
            return future.result()
        except KeyboardInterrupt:
            futures_wait([future])
            raise
