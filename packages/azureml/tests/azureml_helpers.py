"""Helpers shared by the azureml tests (a uniquely named module: every package's tests
folder has its own conftest.py, so test modules import from here, not from ``conftest``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any, Protocol

import pytest

from steplift.launch.policy import LaunchPolicy
from steplift.polling import DEFAULT_CLOCK, DEFAULT_SLEEP
from steplift_azureml.config import AzureMLStepOperatorConfig
from steplift_azureml.emulator import AzureMLEmulator
from steplift_azureml.flavor import FLAVOR
from steplift_azureml.operator import AzureMLStepOperator

ACCOUNT = "devstoreaccount1"
CONTAINER = "steplift-tests"
TEST_FIELDS: dict[str, Any] = {
    "artifact_root": f"azureblob://{ACCOUNT}/{CONTAINER}/artifacts",
    # The SDK's transport retries, fast: the emulator's faults are retried in milliseconds.
    "retry_backoff": 0.01,
    "retry_backoff_max": 0.05,
}
"""What the tests change in the emulator's operator config."""


FRAMEWORK_IMAGES = ("python:3.11-slim", "python:3.11", "myregistry.azurecr.io/train:3")
"""The images the tests' jobs name (the emulator's operator default first)."""
STOCK_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
"""An image no test registers: the emulator runs it as the stock image."""


def with_framework_images(emulator: AzureMLEmulator) -> AzureMLEmulator:
    """``emulator`` with :data:`FRAMEWORK_IMAGES` registered as the test suite's own Python
    environment: a "framework image with steplift" (until jobs install steplift themselves,
    a stock image cannot import it)."""
    for uri in FRAMEWORK_IMAGES:
        emulator.images.register(uri, sys.prefix)
    return emulator


def client_environment(emulator: AzureMLEmulator) -> Iterator[AzureMLEmulator]:
    """Yield ``emulator`` with its client environment in place."""
    patch = pytest.MonkeyPatch()
    for key, value in emulator.client_env().items():
        patch.setenv(key, value)
    # Keep the Azure SDK from reaching any real endpoint or reading developer credentials;
    # AZUREML_CURRENT_CLOUD is set process-wide by MLClient and restored (unset) afterwards.
    for key in (
        "AZURE_CLIENT_ID",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_SECRET",
        "MSI_ENDPOINT",
        "AZUREML_CURRENT_CLOUD",
    ):
        patch.delenv(key, raising=False)
    try:
        yield emulator
    finally:
        patch.undo()


class Clock(Protocol):
    """A test clock (``ConformanceClock``, a virtual clock of the test module)."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


def operator_fields(emulator: AzureMLEmulator, **overrides: Any) -> dict[str, Any]:
    """Raw config fields pointing the azureml flavor at ``emulator`` (without ``flavor``):
    :meth:`AzureMLEmulator.operator_config` with :data:`TEST_FIELDS`, then ``overrides``
    (None leaves a field out)."""
    fields = emulator.operator_config(**{**TEST_FIELDS, **overrides})
    del fields["flavor"]
    return fields


def make_operator(
    emulator: AzureMLEmulator,
    shared: AzureMLStepOperator | None = None,
    clock: Clock | None = None,
    *,
    name: str = "default",
    policy: LaunchPolicy | None = None,
    **overrides: Any,
) -> AzureMLStepOperator:
    """An azureml operator pointed at ``emulator`` (:func:`operator_fields`), reusing the
    clients of ``shared`` (building an MLClient costs the SDK's import and setup); on
    ``clock`` when given, else on the real clock."""
    config = FLAVOR.validate_config(operator_fields(emulator, **overrides))
    assert isinstance(config, AzureMLStepOperatorConfig)
    return AzureMLStepOperator(
        config,
        name=name,
        clock=clock.now if clock else DEFAULT_CLOCK,
        sleep=clock.sleep if clock else DEFAULT_SLEEP,
        policy=policy,
        **(shared.share_clients() if shared else {}),
    )
