"""Fixtures for the SageMaker tests: one emulator per mode, real boto3 clients, and
operators pointed at an emulator. Every executing emulator of the tests runs the images the
tests name with the suite's own environment (`with_framework_images`)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sagemaker_helpers import EmulatorClients, MakeOperator, with_framework_images

from steplift.launch.policy import LaunchPolicy
from steplift.polling import DEFAULT_CLOCK, DEFAULT_SLEEP, Clock, Sleep
from steplift_sagemaker.emulator import SageMakerEmulator
from steplift_sagemaker.flavor import FLAVOR
from steplift_sagemaker.operator import SageMakerStepOperator

EMULATOR_BUCKET = "steplift-emulator-tests"


@pytest.fixture(scope="module")
def _execute_clients() -> Iterator[EmulatorClients]:
    with with_framework_images(SageMakerEmulator(mode="execute", stop_grace=1.0)) as emulator:
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


@pytest.fixture
def make_operator(monkeypatch: pytest.MonkeyPatch) -> MakeOperator:
    """A ``sagemaker`` operator pointed at a running emulator: ``emulator.operator_config``
    with ``fields`` over it, validated and created by the flavor. The test's environment
    gets the emulator's client variables too (plain boto3 clients in a test then reach it)."""

    def make(
        emulator: SageMakerEmulator,
        *,
        name: str = "emulated",
        clock: Clock = DEFAULT_CLOCK,
        sleep: Sleep = DEFAULT_SLEEP,
        policy: LaunchPolicy | None = None,
        **fields: Any,
    ) -> SageMakerStepOperator:
        for key, value in emulator.client_env().items():
            monkeypatch.setenv(key, value)
        table = emulator.operator_config(**fields)
        assert table.pop("flavor") == FLAVOR.name  # the config class itself has no such field
        config = FLAVOR.validate_config(table)
        operator = FLAVOR.create(config, name=name, clock=clock, sleep=sleep, policy=policy)
        assert isinstance(operator, SageMakerStepOperator)
        return operator

    return make
