"""Small pieces every benchmark shares: figures, the machine, child processes, simulated time."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULT_PREFIX = "BENCH-RESULT "
"""A child process prints its JSON result on one line starting with this marker."""


@dataclass(frozen=True)
class Figure:
    """A measured quantity: the median of several runs, with their min and max."""

    median: float
    low: float
    high: float
    runs: int

    @classmethod
    def of(cls, samples: Sequence[float]) -> Figure:
        """Summarise samples (at least one)."""
        if not samples:
            raise ValueError("a figure needs at least one sample")
        return cls(statistics.median(samples), min(samples), max(samples), len(samples))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Figure:
        """The inverse of ``dataclasses.asdict``."""
        return cls(data["median"], data["low"], data["high"], data["runs"])

    def show(self, unit: str = "", digits: int = 1) -> str:
        """``median (min–max, n=runs)`` with ``unit``."""
        return (
            f"{self.median:.{digits}f}{unit} ({self.low:.{digits}f}–{self.high:.{digits}f}, "
            f"n={self.runs})"
        )


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    memory_kib = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    return {
        "cpus": str(os.cpu_count()),
        "memory": f"{memory_kib / 1024 / 1024:.1f} GiB",
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def run_child(
    args: Sequence[str], *, timeout: float, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run a benchmark child process (bounded by ``timeout``); return its JSON result.

    The child's stderr passes through, so progress stays visible; a failure raises
    RuntimeError with the tail of its stdout.
    """
    completed = subprocess.run(
        list(args),
        stdout=subprocess.PIPE,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO,
        check=False,
    )
    for line in reversed(completed.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            return result
    tail = "\n".join(completed.stdout.splitlines()[-20:])
    raise RuntimeError(
        f"{' '.join(args[2:5])} exited {completed.returncode} without a result:\n{tail}"
    )


def print_result(result: dict[str, Any]) -> None:
    """How a child hands its result to the parent."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def progress(message: str) -> None:
    """A progress line on stderr."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class SimulatedTime:
    """A clock whose sleeps are skipped: real elapsed time plus every skipped sleep.

    Work done between sleeps (HTTP calls to an emulator, encoding, ...) still counts at its
    real cost; only waiting is simulated. Events scheduled with :meth:`at` run inside the
    sleep during which their time comes, so a job can "finish" half-way through a poll delay.
    """

    skipped: float = 0.0
    events: list[tuple[float, Callable[[], None]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        """Simulated seconds (monotonic)."""
        return time.monotonic() + self.skipped

    def sleep(self, seconds: float) -> None:
        """Skip ``seconds``, then run every event that became due."""
        with self.lock:
            self.skipped += max(0.0, seconds)
            due = [event for event in self.events if event[0] <= self.now()]
            self.events = [event for event in self.events if event[0] > self.now()]
        for _, action in sorted(due, key=lambda event: event[0]):
            action()

    def at(self, when: float, action: Callable[[], None]) -> None:
        """Run ``action`` once simulated time reaches ``when``."""
        with self.lock:
            self.events.append((when, action))
