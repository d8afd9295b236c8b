"""Command line of the SageMaker emulator (also behind `steplift emulator sagemaker`)."""

from __future__ import annotations

import argparse
import logging
import sys

from steplift.emulation.images import add_image_option, register_image_options
from steplift.testing.emulation import serve_until_interrupted

from .server import SageMakerEmulator


def main(argv: list[str] | None = None) -> int:
    """Serve the emulator on 127.0.0.1, print its endpoint and client env, stop on Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m steplift_sagemaker.emulator",
        description="Local SageMaker + S3 + CloudWatch Logs for the real boto3 client.",
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument(
        "--mode",
        choices=("execute", "scripted"),
        default="execute",
        help="run job commands locally, or step statuses on each describe",
    )
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--quiet", action="store_true", help="do not echo job output lines")
    add_image_option(parser)
    args = parser.parse_args(argv)
    if not args.quiet:
        logging.basicConfig(level=logging.WARNING, format="%(message)s")
        logging.getLogger("steplift_sagemaker.emulator.job_output").setLevel(logging.INFO)
    emulator = SageMakerEmulator(mode=args.mode, region=args.region, port=args.port)
    register_image_options(parser, emulator.images, args.image)
    return serve_until_interrupted(emulator, "steplift SageMaker emulator", sys.stdout)
