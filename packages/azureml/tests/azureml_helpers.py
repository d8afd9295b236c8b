"""Helpers shared by the azureml tests (a uniquely named module: every package's tests
folder has its own conftest.py, so test modules import from here, not from ``conftest``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from steplift_azureml.emulator.service import AzureMLEmulator

ACCOUNT = "devstoreaccount1"
CONTAINER = "steplift-tests"


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


def operator_fields(emulator: AzureMLEmulator, **overrides: Any) -> dict[str, Any]:
    """Raw config fields pointing the azureml flavor at ``emulator``."""
    fields: dict[str, Any] = {
        "subscription_id": emulator.subscription_id,
        "resource_group": emulator.resource_group,
        "workspace": emulator.workspace,
        "artifact_root": f"azureblob://{ACCOUNT}/{CONTAINER}/artifacts",
        "image": "python:3.11-slim",
        "instance_type": "Standard_DS3_v2",
        "cloud_endpoint": emulator.endpoint_url,
        "credential": "managed_identity",
        "retry_backoff": 0.01,
        "retry_backoff_max": 0.05,
    }
    fields.update(overrides)
    return {key: value for key, value in fields.items() if value is not None}
