"""Fixtures shared by the Vertex tests: an executing emulator per test, a check that it
leaves no process or thread behind, and operators pointed at an emulator."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from vertex_support import OperatorFactory, with_framework_images

from steplift.polling import PollPolicy
from steplift_vertex.clients import RetrySettings
from steplift_vertex.emulator import VertexEmulator
from steplift_vertex.flavor import FLAVOR
from steplift_vertex.operator import VertexStepOperator

FAST_POLL = PollPolicy(initial=0.5, factor=1.2, maximum=2.0)
FAST_RETRY = RetrySettings(initial=0.01, maximum=0.05, multiplier=2.0, timeout=5.0)


def emulated_vertex_operator(
    emulator: VertexEmulator, *, clock: Any = None, **fields: Any
) -> VertexStepOperator:
    """A vertex operator pointed at ``emulator`` (virtual time when ``clock`` is given)."""
    table = emulator.operator_config(**fields)
    assert table.pop("flavor") == FLAVOR.name
    config = FLAVOR.validate_config(table)
    timing: dict[str, Any] = {"policy": replace(VertexStepOperator.launch_policy, poll=FAST_POLL)}
    if clock is not None:
        timing.update(clock=clock.now, sleep=clock.sleep)
    operator = FLAVOR.create(config, name="vertex", **timing)
    assert isinstance(operator, VertexStepOperator)
    # Transport retries sleep for real inside google.api_core: keep them short in tests.
    operator.transport_retry = FAST_RETRY
    return operator


@pytest.fixture
def make_operator() -> OperatorFactory:
    """Builds vertex operators pointed at an emulator: ``make_operator(emulator, **fields)``."""
    return emulated_vertex_operator


@pytest.fixture
def emulator() -> Iterator[VertexEmulator]:
    """An executing Vertex emulator with GCS; stopped, and checked clean, after the test. It
    runs the images the tests name with the suite's own environment."""
    before = set(threading.enumerate())
    with with_framework_images(VertexEmulator(stop_grace=1.0)) as running:
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
