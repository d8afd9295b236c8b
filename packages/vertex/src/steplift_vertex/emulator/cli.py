"""The command line of the emulator: what ``steplift emulator vertex`` runs.

``steplift emulator vertex [--port N]`` serves until Ctrl-C or SIGTERM and prints the
``[operators.vertex]`` fields that point steplift at it. ``... -- SCRIPT [ARGS...]`` instead
runs a Python script's steps on it: the emulator starts in this process, a ``vertex``
operator is pointed at it through a temporary config file (``STEPLIFT_CONFIG``), the script
runs as ``__main__``, and the emulator stops when it ends.

``--image URI=PATH`` (repeatable) runs jobs on image URI with the Python environment (or
interpreter) at PATH; any other image is the stock one (standard library and pip only). A
script run here launches from this environment, so the operator's image is this environment
unless ``--image`` says otherwise: the job imports steplift from it.
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys
import tempfile
from pathlib import Path

from steplift.emulation.images import add_image_option, register_image_options
from steplift.testing.emulation import serve_until_interrupted
from steplift_vertex.emulator.server import DEFAULT_BUCKET, DEFAULT_PROJECT, VertexEmulator


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, serve (or run a script); return the exit code."""
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
    add_image_option(parser)
    parser.add_argument(
        "script",
        nargs=argparse.REMAINDER,
        help="-- SCRIPT [ARGS...]: run a Python script's steps on the emulator, then stop",
    )
    options = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if not 0 <= options.port <= 65535 or not 0 <= options.gcs_port <= 65535:
        parser.error("ports are between 0 and 65535")
    script = options.script[1:] if options.script[:1] == ["--"] else options.script
    if options.script and (options.script[0] != "--" or not script):
        parser.error("give a script to run after --: ... -- SCRIPT [ARGS...]")
    emulator = VertexEmulator(
        options.mode,
        port=options.port,
        gcs_port=options.gcs_port,
        project=options.project,
        buckets=options.bucket or [DEFAULT_BUCKET],
        gcs=not options.no_gcs,
    )
    register_image_options(parser, emulator.images, options.image)
    try:
        emulator.start()
    except (OSError, RuntimeError) as error:
        emulator.stop()
        print(f"steplift emulator vertex: {error}", file=sys.stderr)
        return 2
    try:
        if script:
            return run_script(emulator, script)
        print("# steplift.toml for this emulator:")
        print("# [operators.vertex]")
        for line in config_lines(emulator):
            print(f"# {line}")
        sys.stdout.flush()
        # serve_until_interrupted starts (a no-op now) and stops the emulator.
        return serve_until_interrupted(emulator, "Vertex AI emulator", sys.stdout)
    finally:
        emulator.stop()


def config_lines(emulator: VertexEmulator) -> list[str]:
    """The ``[operators.vertex]`` fields that point at ``emulator``, as TOML lines."""
    return [f'{key} = "{value}"' for key, value in emulator.operator_config().items()]


def run_script(emulator: VertexEmulator, argv: list[str]) -> int:
    """Run ``argv[0]`` (a Python script) with its arguments against the running ``emulator``."""
    script = Path(argv[0]).resolve()
    image = str(emulator.operator_config()["image"])
    if image not in emulator.images:
        # The script's steps launch from this environment: its jobs run with it as their image.
        emulator.images.register(image, sys.prefix)
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "steplift.toml"
        lines = ['default_operator = "vertex"', "", "[operators.vertex]", *config_lines(emulator)]
        config.write_text("\n".join(lines) + "\n")
        saved = dict(os.environ), list(sys.argv), list(sys.path)
        os.environ.update({"STEPLIFT_CONFIG": str(config), "STEPLIFT_OPERATOR": "vertex"})
        sys.argv = [str(script), *argv[1:]]
        sys.path.insert(0, str(script.parent))
        print(
            f"steplift: running {script.name} on the Vertex AI emulator at {emulator.endpoint_url}",
            flush=True,
        )
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as leaving:
            return leaving.code if isinstance(leaving.code, int) else 0 if not leaving.code else 1
        finally:
            os.environ.clear()
            os.environ.update(saved[0])
            sys.argv, sys.path[:] = saved[1], saved[2]
        print(f"steplift: {emulator.submissions()} Vertex AI job(s) ran", flush=True)
    return 0
