"""A local stand-in for Vertex AI custom training: ``steplift emulator vertex [--port N]``.

Serves customJobs (create/get/list/cancel/delete under ``/v1`` and ``/v1beta1``), Cloud
Logging ``entries:list`` and, through gcp-storage-emulator, Cloud Storage on 127.0.0.1, and
runs each job's command as a local process. See :class:`VertexEmulator`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from steplift_vertex.emulator.server import VertexEmulator

__all__ = ["VertexEmulator", "main"]


def main(argv: list[str] | None = None) -> int:
    """Serve the emulator in the foreground; prints the endpoint and the client environment."""
    from steplift_vertex.emulator.cli import run

    return run(argv)


def __getattr__(name: str) -> Any:
    if name == "VertexEmulator":
        from steplift_vertex.emulator.server import VertexEmulator

        return VertexEmulator
    raise AttributeError(f"module 'steplift_vertex.emulator' has no attribute {name!r}")
