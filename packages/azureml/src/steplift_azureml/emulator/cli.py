"""``steplift emulator azureml [--port N] [--mode M] [--no-azurite] [-- CMD...]``.

Serves the emulator in the foreground and prints how to connect, or runs ``CMD`` with an
``azureml`` operator pointed at it and stops.

``--image URI=PATH`` (repeatable) runs jobs on image URI with the Python environment (or
interpreter) at PATH; any other image is the stock one (standard library and pip only). With
``-- CMD``, the operator's image is this environment unless ``--image`` says otherwise (the
command launches steps with steplift installed here).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from steplift_azureml.emulator.server import AzureMLEmulator


def main(argv: list[str] | None = None) -> int:
    """Serve the emulator in the foreground; print its endpoint and the client environment."""
    from steplift.emulation.images import add_image_option, register_image_options
    from steplift.testing.emulation import serve_until_interrupted
    from steplift_azureml.emulator.storage import INSTALL_HINT, find_azurite

    parser = argparse.ArgumentParser(prog="steplift emulator azureml")
    parser.add_argument("--port", type=int, default=0, help="HTTPS port (default: any free)")
    parser.add_argument("--mode", choices=("execute", "scripted"), default="execute")
    parser.add_argument(
        "--no-azurite",
        action="store_true",
        help="do not start Azurite (jobs then get no storage connection string)",
    )
    add_image_option(parser)
    parser.add_argument(
        "command",
        nargs=argparse.REMAINDER,
        help="-- CMD...: run CMD with an `azureml` operator pointed here, then stop",
    )
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not args.no_azurite and find_azurite() is None:
        print(f"steplift: error: Azurite is needed for blobs; {INSTALL_HINT}", file=sys.stderr)
        return 2
    emulator = AzureMLEmulator(args.mode, port=args.port, azurite=not args.no_azurite)
    register_image_options(parser, emulator.images, args.image)
    if command:
        return run_against(emulator, command)
    return serve_until_interrupted(emulator, "Azure ML emulator", sys.stdout)


def run_against(emulator: AzureMLEmulator, command: Sequence[str]) -> int:
    """Run ``command`` with a config whose default operator is the emulator; its exit code.

    The command gets the client environment and ``STEPLIFT_CONFIG`` naming a config file with
    ``default_operator = "azureml-emulator"`` (used by ``nox -s demo``).
    """
    with emulator, tempfile.TemporaryDirectory(prefix="steplift-azureml-run-") as folder:
        fields = emulator.operator_config()
        image = fields.get("image")
        if image and image not in emulator.images:
            # CMD launches its steps from this environment: its jobs run with it as the image.
            emulator.images.register(str(image), sys.prefix)
        lines = ['default_operator = "azureml-emulator"', "", "[operators.azureml-emulator]"]
        lines += [f"{key} = {_toml_string(str(value))}" for key, value in fields.items()]
        config = Path(folder) / "steplift.toml"
        config.write_text("\n".join(lines) + "\n")
        env = {**os.environ, **emulator.client_env(), "STEPLIFT_CONFIG": str(config)}
        env.pop("STEPLIFT_OPERATOR", None)
        print(f"Azure ML emulator on {emulator.endpoint_url}; running {' '.join(command)}")
        sys.stdout.flush()
        try:
            return subprocess.call(list(command), env=env)
        except KeyboardInterrupt:
            return 130


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
