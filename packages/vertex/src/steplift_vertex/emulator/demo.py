"""Run a script's steps on the Vertex emulator: ``python -m steplift_vertex.emulator.demo
examples/train.py [ARGS...]``.

Starts an executing emulator in this process, points a ``vertex`` operator at it through a
temporary config file (``STEPLIFT_CONFIG``), then runs the script as ``__main__``. The steps
the script calls run as emulated Vertex AI CustomJobs.
"""

from __future__ import annotations

import os
import runpy
import sys
import tempfile
from pathlib import Path

from steplift_vertex.emulator.server import VertexEmulator


def config_text(emulator: VertexEmulator) -> str:
    """A steplift.toml whose default operator is a ``vertex`` one on ``emulator``."""
    lines = ['default_operator = "vertex"', "", "[operators.vertex]", 'flavor = "vertex"']
    lines += [f'{key} = "{value}"' for key, value in emulator.operator_config().items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run ``argv[0]`` (a Python script) with its arguments against the emulator."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m steplift_vertex.emulator.demo SCRIPT [ARGS...]", file=sys.stderr)
        return 2
    script = Path(args[0]).resolve()
    with VertexEmulator() as emulator, tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "steplift.toml"
        config.write_text(config_text(emulator))
        saved = dict(os.environ), list(sys.argv), list(sys.path)
        os.environ.update({"STEPLIFT_CONFIG": str(config), "STEPLIFT_OPERATOR": "vertex"})
        sys.argv = [str(script), *args[1:]]
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


if __name__ == "__main__":
    sys.exit(main())
