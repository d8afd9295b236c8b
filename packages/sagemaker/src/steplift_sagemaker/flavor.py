"""The ``sagemaker`` flavor (found through the ``steplift.flavors`` entry point)."""

from __future__ import annotations

from steplift.operator import Flavor

FLAVOR = Flavor(
    name="sagemaker",
    config="steplift_sagemaker.config:SageMakerStepOperatorConfig",
    operator="steplift_sagemaker.operator:SageMakerStepOperator",
)
"""Steps as SageMaker training jobs. boto3 is imported only when a launch needs it."""
