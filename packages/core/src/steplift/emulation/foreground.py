"""Running an emulator in the foreground, as `steplift emulator <cloud>` does: print how to
connect, then serve until Ctrl-C or SIGTERM."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator, Mapping
from typing import IO

from steplift.emulation.control import CONTROL_PREFIX
from steplift.emulation.protocol import Emulator

__all__ = ["export_lines", "serve_until_interrupted"]


def export_lines(env: Mapping[str, str]) -> Iterator[str]:
    """Shell `export` lines for an environment."""
    for key, value in env.items():
        yield f"export {key}={value}"


def serve_until_interrupted(emulator: Emulator, title: str, out: IO[str]) -> int:
    """Run an emulator in the foreground: print endpoint and client env, serve until Ctrl-C.

    SIGTERM is treated like Ctrl-C so a supervisor can stop it cleanly. Returns an exit code.
    """
    stop = threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    try:
        with emulator:
            print(f"{title} ({emulator.mode} mode) listening on {emulator.endpoint_url}", file=out)
            for line in export_lines(emulator.client_env()):
                print(line, file=out)
            print(
                f"control API: {emulator.endpoint_url}{CONTROL_PREFIX}  (Ctrl-C to stop)", file=out
            )
            out.flush()
            with contextlib.suppress(KeyboardInterrupt):
                while not stop.wait(0.5):
                    pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0
