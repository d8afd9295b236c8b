"""The command line of the emulator (``steplift emulator vertex``)."""

from __future__ import annotations

import argparse
import sys

from steplift.testing.emulation import serve_until_interrupted
from steplift_vertex.emulator.server import DEFAULT_BUCKET, DEFAULT_PROJECT, VertexEmulator


def run(argv: list[str] | None = None) -> int:
    """Parse arguments, serve until Ctrl-C or SIGTERM; return the exit code."""
    parser = argparse.ArgumentParser(
        prog="steplift emulator vertex",
        description="Vertex AI custom jobs, Cloud Logging and Cloud Storage on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=8090, help="Vertex/Logging port (0: any)")
    parser.add_argument("--gcs-port", type=int, default=0, help="Cloud Storage port (0: any)")
    parser.add_argument("--project", default=DEFAULT_PROJECT)
    parser.add_argument(
        "--bucket", action="append", default=None, help=f"bucket to create ({DEFAULT_BUCKET})"
    )
    parser.add_argument("--mode", choices=("execute", "scripted"), default="execute")
    parser.add_argument("--no-gcs", action="store_true", help="serve no Cloud Storage")
    options = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if not 0 <= options.port <= 65535 or not 0 <= options.gcs_port <= 65535:
        parser.error("ports are between 0 and 65535")
    emulator = VertexEmulator(
        options.mode,
        port=options.port,
        gcs_port=options.gcs_port,
        project=options.project,
        buckets=options.bucket or [DEFAULT_BUCKET],
        gcs=not options.no_gcs,
    )
    try:
        emulator.start()
    except (OSError, RuntimeError) as error:
        emulator.stop()
        print(f"steplift emulator vertex: {error}", file=sys.stderr)
        return 2
    try:
        print("# steplift.toml for this emulator:")
        print('# [operators.vertex]\n# flavor = "vertex"')
        for key, value in emulator.operator_config().items():
            print(f'# {key} = "{value}"')
        sys.stdout.flush()
        # serve_until_interrupted starts (a no-op now) and stops the emulator.
        return serve_until_interrupted(emulator, "Vertex AI emulator", sys.stdout)
    finally:
        emulator.stop()
