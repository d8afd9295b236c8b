"""The local Azure ML emulator: ``steplift emulator azureml [--port N]``.

Serves the Azure ML API the real ``azure-ai-ml`` client calls on https://127.0.0.1, executes
command jobs as local subprocesses (or scripts their statuses) and keeps blobs in Azurite.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from steplift_azureml.emulator.service import AzureMLEmulator, Compute
    from steplift_azureml.emulator.storage import Azurite

__all__ = ["Azurite", "AzureMLEmulator", "Compute", "main"]


def __getattr__(name: str) -> Any:
    if name in ("AzureMLEmulator", "Compute"):
        from steplift_azureml.emulator import service

        return getattr(service, name)
    if name == "Azurite":
        from steplift_azureml.emulator import storage as azurite

        return azurite.Azurite
    raise AttributeError(f"module 'steplift_azureml.emulator' has no attribute {name!r}")


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the emulator in the foreground; print its endpoint and the client environment."""
    from steplift.testing.emulation import serve_until_interrupted
    from steplift_azureml.emulator.service import AzureMLEmulator
    from steplift_azureml.emulator.storage import INSTALL_HINT, find_azurite

    parser = argparse.ArgumentParser(prog="steplift emulator azureml")
    parser.add_argument("--port", type=int, default=0, help="HTTPS port (default: any free)")
    parser.add_argument("--mode", choices=("execute", "scripted"), default="execute")
    parser.add_argument(
        "--no-azurite",
        action="store_true",
        help="do not start Azurite (jobs then get no storage connection string)",
    )
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
    if command:
        return run_against(emulator, command)
    code = serve_until_interrupted(emulator, "Azure ML emulator", sys.stdout)
    return code


def run_against(emulator: AzureMLEmulator, command: Sequence[str]) -> int:
    """Run ``command`` with a config whose default operator is the emulator; its exit code.

    The command gets the client environment and ``STEPLIFT_CONFIG`` naming a config file with
    ``default_operator = "azureml-emulator"`` (used by ``nox -s demo``).
    """
    import os
    import subprocess
    import tempfile
    from pathlib import Path

    with emulator, tempfile.TemporaryDirectory(prefix="steplift-azureml-run-") as folder:
        fields = describe_operator_config(emulator, "azureblob://devstoreaccount1/steplift/demo")
        fields.pop("compute")
        fields["instance_type"] = "Standard_DS3_v2"
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


def describe_operator_config(emulator: AzureMLEmulator, artifact_root: str) -> dict[str, Any]:
    """The ``[operators.NAME]`` fields that point the azureml flavor at ``emulator``."""
    return {
        "flavor": "azureml",
        "subscription_id": emulator.subscription_id,
        "resource_group": emulator.resource_group,
        "workspace": emulator.workspace,
        "cloud_endpoint": emulator.endpoint_url,
        "credential": "managed_identity",
        "artifact_root": artifact_root,
        "image": "python:3.11-slim",
        "compute": "cpu-cluster",
    }
