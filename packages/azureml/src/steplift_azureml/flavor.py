"""The ``azureml`` flavor: registered in ``steplift.flavors``, imports no Azure SDK."""

from __future__ import annotations

from steplift.operator import Flavor, StepOperator, StepOperatorConfig
from steplift_azureml.config import AzureMLStepOperatorConfig


class AzureMLFlavor(Flavor):
    """Runs steps as Azure ML command jobs."""

    @property
    def name(self) -> str:
        return "azureml"

    @property
    def config_class(self) -> type[StepOperatorConfig]:
        return AzureMLStepOperatorConfig

    @property
    def implementation_class(self) -> type[StepOperator]:
        from steplift_azureml.operator import AzureMLStepOperator

        return AzureMLStepOperator
