"""The ``sagemaker`` flavor (found through the ``steplift.flavors`` entry point)."""

from __future__ import annotations

from steplift.operator import Flavor, StepOperator, StepOperatorConfig
from steplift_sagemaker.config import SageMakerStepOperatorConfig


class SageMakerFlavor(Flavor):
    """Steps as SageMaker training jobs. boto3 is imported only when a launch needs it."""

    @property
    def name(self) -> str:
        return "sagemaker"

    @property
    def config_class(self) -> type[StepOperatorConfig]:
        return SageMakerStepOperatorConfig

    @property
    def implementation_class(self) -> type[StepOperator]:
        from steplift_sagemaker.operator import SageMakerStepOperator

        return SageMakerStepOperator
