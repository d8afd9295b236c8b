"""The ``azureml`` flavor: registered in ``steplift.flavors``, imports no Azure SDK."""

from __future__ import annotations

from steplift.operator import Flavor

FLAVOR = Flavor(
    name="azureml",
    config="steplift_azureml.config:AzureMLStepOperatorConfig",
    operator="steplift_azureml.operator:AzureMLStepOperator",
)
"""Runs steps as Azure ML command jobs."""
