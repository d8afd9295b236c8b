"""Fixtures for the azureml tests: one Azurite per session, one emulator per module, and the
environment a real azure-ai-ml client needs to reach them (CA bundle, managed identity)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azureml_helpers import client_environment, with_framework_images

from steplift_azureml.emulator import AzureMLEmulator
from steplift_azureml.emulator.storage import INSTALL_HINT, Azurite, find_azurite


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """The Azurite blob service (npm ``azurite``), started once per session."""
    if find_azurite() is None:
        pytest.fail(f"Azurite is needed by the azureml tests; {INSTALL_HINT}", pytrace=False)
    with Azurite() as service:
        yield service
    assert service.pid is None, "Azurite is still running"


@pytest.fixture(scope="module")
def execute_emulator(azurite: Azurite) -> Iterator[AzureMLEmulator]:
    """An executing emulator whose jobs use the session's Azurite and run the images the
    tests name with the suite's own environment."""
    emulator = AzureMLEmulator("execute", azurite=azurite, stop_grace=1.0, retry_after_ms=10)
    with with_framework_images(emulator):
        yield from client_environment(emulator)


@pytest.fixture(scope="module")
def scripted_emulator() -> Iterator[AzureMLEmulator]:
    """A scripted emulator (no processes, no blobs)."""
    with AzureMLEmulator("scripted", retry_after_ms=10) as emulator:
        yield from client_environment(emulator)
