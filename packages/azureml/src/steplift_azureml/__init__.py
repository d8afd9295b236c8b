"""steplift on Azure ML: the ``azureml`` flavor, the ``azureblob://`` artifact store and a
local HTTPS emulator of the Azure ML API (``steplift emulator azureml``).

Importing this package, building or validating a config imports no Azure SDK; the operator
and the store import it when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from steplift_azureml.config import AzureMLStepOperatorConfig
    from steplift_azureml.operator import AzureMLStepOperator
    from steplift_azureml.store import AzureBlobArtifactStore

__all__ = [
    "AzureBlobArtifactStore",
    "AzureMLStepOperator",
    "AzureMLStepOperatorConfig",
]

_HOMES = {
    "AzureBlobArtifactStore": "steplift_azureml.store",
    "AzureMLStepOperator": "steplift_azureml.operator",
    "AzureMLStepOperatorConfig": "steplift_azureml.config",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'steplift_azureml' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(home), name)
