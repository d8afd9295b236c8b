"""The local Azure ML emulator: ``steplift emulator azureml [--port N]``.

Serves the Azure ML API the real ``azure-ai-ml`` client calls on https://127.0.0.1, executes
command jobs as local subprocesses (or scripts their statuses) and keeps blobs in Azurite.
Importing this package imports nothing else: the names below load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from steplift_azureml.emulator.cli import main
    from steplift_azureml.emulator.server import AzureMLEmulator, Compute
    from steplift_azureml.emulator.storage import Azurite

__all__ = ["Azurite", "AzureMLEmulator", "Compute", "main"]

_HOMES = {
    "AzureMLEmulator": "server",
    "Compute": "server",
    "Azurite": "storage",
    "main": "cli",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'steplift_azureml.emulator' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"steplift_azureml.emulator.{home}"), name)
