"""Fixtures shared by the Vertex tests: an executing emulator per test, and a check that it
leaves no process or thread behind."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from steplift_vertex.emulator import VertexEmulator


@pytest.fixture
def emulator() -> Iterator[VertexEmulator]:
    """An executing Vertex emulator with GCS; stopped, and checked clean, after the test."""
    before = set(threading.enumerate())
    with VertexEmulator(stop_grace=1.0) as running:
        yield running
    assert_clean(running, before)


@pytest.fixture
def scripted() -> Iterator[VertexEmulator]:
    """A scripted Vertex emulator without GCS (no process ever runs)."""
    before = set(threading.enumerate())
    with VertexEmulator("scripted", gcs=False) as running:
        yield running
    assert_clean(running, before)


def assert_clean(emulator: VertexEmulator, before: set[threading.Thread]) -> None:
    """No job process, runner, server or request thread is left once the emulator stopped."""
    leftovers = [job.number for job in emulator.jobs.all_jobs() if emulator.is_running(job.number)]
    assert not leftovers, f"jobs still running after stop: {leftovers}"
    # Request threads may take a moment to unwind after their last byte went out.
    give_up = time.monotonic() + 5.0
    while time.monotonic() < give_up:
        extra = [thread for thread in set(threading.enumerate()) - before if thread.is_alive()]
        if not extra:
            return
        time.sleep(0.02)
    raise AssertionError(f"threads left running: {extra}")
