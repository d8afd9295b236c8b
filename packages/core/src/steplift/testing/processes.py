"""Helpers for tests that drive steplift as a separate process."""

from __future__ import annotations

import selectors
import time
from typing import IO


def read_until(stream: IO[str], needle: str, timeout: float = 30.0) -> str:
    """Read lines from a pipe until one contains ``needle``; AssertionError after ``timeout``."""
    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)
    seen = ""
    give_up = time.monotonic() + timeout
    try:
        while time.monotonic() < give_up:
            if not selector.select(timeout=0.1):
                continue
            line = stream.readline()
            if not line:
                break
            seen += line
            if needle in line:
                return seen
    finally:
        selector.close()
    raise AssertionError(f"{needle!r} never appeared; output so far: {seen!r}")
