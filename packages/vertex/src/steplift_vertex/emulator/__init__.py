"""A local stand-in for Vertex AI custom training: ``steplift emulator vertex [--port N]``.

Serves customJobs (create/get/list/cancel/delete under ``/v1`` and ``/v1beta1``), Cloud
Logging ``entries:list``, Secret Manager and, through gcp-storage-emulator, Cloud Storage on
127.0.0.1, and runs each job's command as a local process. See :class:`VertexEmulator`.

- ``server``: `VertexEmulator` itself; ``service``: the REST routes and wire format;
  ``jobs``: `EmulatedJob` and the job table; ``container``: how a replica's process is
  started; ``validation``: what the service accepts; ``errors``: `ApiError`;
  ``logs``, ``storage``, ``secrets``: Cloud Logging, Cloud Storage, Secret Manager;
  ``cli``: the command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from steplift_vertex.emulator.server import VertexEmulator

__all__ = ["VertexEmulator", "main"]


def main(argv: list[str] | None = None) -> int:
    """Serve the emulator in the foreground (see :func:`steplift_vertex.emulator.cli.main`)."""
    from steplift_vertex.emulator.cli import main as cli_main

    return cli_main(argv)


def __getattr__(name: str) -> Any:
    if name == "VertexEmulator":
        from steplift_vertex.emulator.server import VertexEmulator

        return VertexEmulator
    raise AttributeError(f"module 'steplift_vertex.emulator' has no attribute {name!r}")
