"""Step functions the conformance suite runs inside jobs (importable wherever steplift is)."""

from __future__ import annotations

import time


def add_and_log(a: int, b: int) -> int:
    """Print a line and return the sum."""
    print(f"adding {a} and {b}", flush=True)
    return a + b


def fail_with(message: str) -> None:
    """Raise a RuntimeError carrying ``message``."""
    print("about to fail", flush=True)
    raise RuntimeError(message)


def sleep_for(seconds: float) -> str:
    """Print, sleep, return. Tests stop it long before it ends."""
    print("sleeping", flush=True)
    time.sleep(seconds)
    return "woke up"
