"""Payload transfer: a large step input/output through each artifact store vs the raw SDK.

    python -m benchmarks.transfer --flavor sagemaker --mib 1024 --runs 5

Runs in its own process with the flavor's emulator and storage (S3 on moto, the GCS
emulator, Azurite) on 127.0.0.1. steplift's path is what a step's output takes:
``write_payload`` (encode, SHA-256, ``ArtifactStore.put``) and ``read_payload`` (``get``,
digest check, decode) of a ``bytes`` value. The raw path moves the same bytes with the storage
SDK's own transfer: boto3's TransferManager (``upload_fileobj``/``download_fileobj``),
google-cloud-storage ``upload_from_file``/``download_to_file``, azure-storage-blob
``upload_blob``/``download_blob`` with ``max_concurrency=4``. steplift and raw alternate
within each run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from steplift.payloads import read_payload, write_payload
from steplift.store import join_uri

from .backends import FLAVORS, running_backend
from .benchlib import Figure, print_result, progress

MIB = 1024 * 1024


def measure(flavor: str, mib: int, runs: int) -> dict[str, Any]:
    """MiB/s up and down, steplift vs raw, ``runs`` times each."""
    data = os.urandom(mib * MIB)
    speeds: dict[str, list[float]] = {
        "steplift_up": [],
        "steplift_down": [],
        "raw_up": [],
        "raw_down": [],
    }
    with running_backend(flavor) as backend:
        operator = backend.operator()
        store = operator.artifact_store
        stem = join_uri(operator.artifact_root, "bench", "payload")
        raw_key = "bench/raw-payload"
        for run in range(runs):
            order = ("steplift", "raw") if run % 2 == 0 else ("raw", "steplift")
            for path in order:
                started = time.perf_counter()
                if path == "steplift":
                    ref = write_payload(store, stem, data)
                else:
                    backend.raw_upload(raw_key, data)
                uploaded = time.perf_counter()
                if path == "steplift":
                    back = read_payload(store, ref)
                else:
                    back = backend.raw_download(raw_key)
                downloaded = time.perf_counter()
                if len(back) != len(data):
                    raise RuntimeError(f"{flavor} {path}: read {len(back)} bytes of {len(data)}")
                del back
                speeds[f"{path}_up"].append(mib / (uploaded - started))
                speeds[f"{path}_down"].append(mib / (downloaded - uploaded))
            progress(
                f"transfer {flavor} run {run + 1}/{runs}: "
                + ", ".join(f"{name} {values[-1]:.0f} MiB/s" for name, values in speeds.items())
            )
    return {
        "flavor": flavor,
        "mib": mib,
        "speeds": {name: Figure.of(values).__dict__ for name, values in speeds.items()},
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flavor", required=True, choices=FLAVORS)
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    print_result(measure(args.flavor, args.mib, args.runs))


if __name__ == "__main__":
    main(sys.argv[1:])
