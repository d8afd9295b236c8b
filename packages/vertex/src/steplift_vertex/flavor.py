"""The ``vertex`` flavor, found through the ``steplift.flavors`` entry point."""

from __future__ import annotations

from steplift.operator import Flavor

FLAVOR = Flavor(
    name="vertex",
    config="steplift_vertex.config:VertexStepOperatorConfig",
    operator="steplift_vertex.operator:VertexStepOperator",
)
"""Steps as Vertex AI CustomJobs, artifacts in Cloud Storage."""
