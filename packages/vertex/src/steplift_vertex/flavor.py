"""The ``vertex`` flavor, found through the ``steplift.flavors`` entry point."""

from __future__ import annotations

from steplift.operator import Flavor, StepOperator, StepOperatorConfig
from steplift_vertex.config import VertexStepOperatorConfig


class VertexFlavor(Flavor):
    """Steps as Vertex AI CustomJobs, artifacts in Cloud Storage."""

    @property
    def name(self) -> str:
        return "vertex"

    @property
    def config_class(self) -> type[StepOperatorConfig]:
        return VertexStepOperatorConfig

    @property
    def implementation_class(self) -> type[StepOperator]:
        # The operator module imports the Google SDK only inside its methods.
        from steplift_vertex.operator import VertexStepOperator

        return VertexStepOperator
