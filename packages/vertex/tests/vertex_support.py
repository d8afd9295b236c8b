"""Helpers of the Vertex tests (a unique module name: test folders are not packages)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from steplift_vertex.emulator import VertexEmulator
from steplift_vertex.operator import VertexStepOperator

OperatorFactory = Callable[..., VertexStepOperator]
"""The ``make_operator`` fixture (conftest.py): ``make_operator(emulator, *, clock=None,
**fields)`` is a vertex operator pointed at the emulator."""


FRAMEWORK_IMAGES = (
    "local/steplift:emulated",  # the emulator's operator default
    "local/test",
    "us-docker.pkg.dev/my-project/train/steplift:1",
)
"""The images the tests' jobs name."""
STOCK_IMAGE = "us-docker.pkg.dev/vertex-ai/training/stock:latest"
"""An image no test registers: the emulator runs it as the stock image."""


def with_framework_images(emulator: VertexEmulator) -> VertexEmulator:
    """``emulator`` with :data:`FRAMEWORK_IMAGES` registered as the test suite's own Python
    environment: a "framework image with steplift" (until jobs install steplift themselves,
    a stock image cannot import it)."""
    for uri in FRAMEWORK_IMAGES:
        emulator.images.register(uri, sys.prefix)
    return emulator


def job_client(emulator: VertexEmulator, version: str = "v1") -> Any:
    """The unmodified aiplatform JobServiceClient (REST) pointed at the emulator."""
    from google.auth.credentials import AnonymousCredentials

    if version == "v1beta1":
        from google.cloud.aiplatform_v1beta1 import JobServiceClient
    else:
        from google.cloud.aiplatform_v1 import JobServiceClient  # type: ignore[assignment]
    return JobServiceClient(
        transport="rest",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": emulator.endpoint_url},
    )


PARENT = "projects/steplift-emulator/locations/us-central1"


def job_body(
    command: list[str] | None = None, *, labels: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    """A minimal CustomJob (GAPIC field names) running ``command``."""
    return {
        "display_name": "emulator-test",
        "labels": labels or {},
        "job_spec": {
            "worker_pool_specs": [
                {
                    "machine_spec": {"machine_type": "n1-standard-4"},
                    "replica_count": 1,
                    "container_spec": {
                        "image_uri": "local/test",
                        "command": command or ["python", "-c", "print('hi')"],
                    },
                }
            ],
            **spec,
        },
    }
