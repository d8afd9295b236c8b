"""Fixtures for the SageMaker emulator tests: one emulator per mode, real boto3 clients."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from steplift_sagemaker.emulator import SageMakerEmulator
from steplift_sagemaker.emulator.testing import EmulatorClients

EMULATOR_BUCKET = "steplift-emulator-tests"


@pytest.fixture(scope="module")
def _execute_clients() -> Iterator[EmulatorClients]:
    with SageMakerEmulator(mode="execute", stop_grace=1.0) as emulator:
        clients = EmulatorClients.of(emulator)
        clients.s3.create_bucket(Bucket=EMULATOR_BUCKET)
        yield clients


@pytest.fixture(scope="module")
def _scripted_clients() -> Iterator[EmulatorClients]:
    with SageMakerEmulator(mode="scripted") as emulator:
        yield EmulatorClients.of(emulator)


@pytest.fixture
def execute(_execute_clients: EmulatorClients) -> Iterator[EmulatorClients]:
    """Clients of the execute-mode emulator (bucket `steplift-emulator-tests`), reset after."""
    yield _execute_clients
    _execute_clients.emulator.reset()


@pytest.fixture
def scripted(_scripted_clients: EmulatorClients) -> Iterator[EmulatorClients]:
    """Clients of the scripted-mode emulator, reset after the test."""
    yield _scripted_clients
    _scripted_clients.emulator.reset()


@pytest.fixture
def script(tmp_path: Path) -> Callable[[str], list[str]]:
    """Write job code to a file; returns the command that runs it.

    SageMaker refuses a newline in a ContainerArguments item (its pattern is `.*`), so
    multi-line code cannot be passed with `python -c`.
    """
    count = itertools.count()

    def write(code: str) -> list[str]:
        path = tmp_path / f"job_{next(count)}.py"
        path.write_text(code)
        return ["python", str(path)]

    return write
