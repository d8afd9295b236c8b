"""Helpers for tests that drive steplift as a separate process."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO


def read_until(stream: IO[str], needle: str, timeout: float = 30.0) -> str:
    """Read lines from a pipe until one contains ``needle``; AssertionError after ``timeout``.

    A thread does the blocking reads: select() on a buffered text pipe would miss lines
    already pulled into Python's buffer.
    """
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        try:
            for line in iter(stream.readline, ""):
                lines.put(line)
                if needle in line:
                    return
        except (OSError, ValueError):  # the test closed the pipe after giving up
            pass
        lines.put("")  # end of stream

    threading.Thread(target=pump, name="read-until", daemon=True).start()
    seen = ""
    give_up = time.monotonic() + timeout
    while (left := give_up - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if not line:
            break
        seen += line
        if needle in line:
            return seen
    raise AssertionError(f"{needle!r} never appeared; output so far: {seen!r}")


@contextmanager
def steplift_process(*arguments: str) -> Iterator[subprocess.Popen[str]]:
    """``python -m steplift.cli ARGUMENTS`` with piped text output; killed and closed after."""
    process = subprocess.Popen(
        [sys.executable, "-m", "steplift.cli", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pipe in (process.stdout, process.stderr):
            if pipe:
                pipe.close()


def signal_and_wait(
    process: subprocess.Popen[str], signal_number: int, timeout: float = 60.0
) -> tuple[int, str]:
    """Send a signal; return the exit code and what the process wrote to stderr."""
    process.send_signal(signal_number)
    code = process.wait(timeout=timeout)
    return code, process.stderr.read() if process.stderr else ""


CLOUD_SDK_ROOTS = ("boto3", "botocore", "google", "azure", "moto")


def modules_loaded_by(
    code: str,
    roots: tuple[str, ...] = CLOUD_SDK_ROOTS,
    env: Mapping[str, str] | None = None,
) -> list[str]:
    """Modules under ``roots`` that running ``code`` in a fresh interpreter loads.

    Only modules loaded from a file count: google-cloud wheels install a .pth file that makes
    empty `google` namespace packages in every interpreter, whatever it imports.
    """
    probe = code + (
        "\nimport json as _json, sys as _sys\n"
        f"_roots = {tuple(roots)!r}\n"
        "print(_json.dumps(sorted(n for n, m in _sys.modules.items()"
        " if n.split('.')[0] in _roots and getattr(m, '__file__', None))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        env=None if env is None else dict(env),
    )
    if out.returncode:
        raise AssertionError(f"the probe failed:\n{out.stderr}")
    loaded: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return loaded
