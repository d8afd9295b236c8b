"""The example training step on a cloud emulator, through a real config file and the real SDK.

    python examples/on_emulator.py {sagemaker,vertex,azureml}

The emulator (installed with the provider's `emulator` extra; Azure ML's also needs Azurite,
see the README) serves the cloud's API on 127.0.0.1 and runs the job as a local process;
steplift talks to it with the provider's own SDK, exactly as it would to the cloud.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Emulated:
    """A running emulator and the `[operators.<name>]` table that points a flavor at it."""

    emulator: Any  # a steplift.testing.emulation.Emulator
    table: str


def toml_table(fields: dict[str, Any]) -> str:
    """An operator's fields as TOML lines."""
    return "".join(f"{key} = {json.dumps(value)}\n" for key, value in fields.items())


@contextmanager
def sagemaker() -> Iterator[Emulated]:
    """The SageMaker emulator (with moto's S3 and CloudWatch Logs)."""
    import boto3

    from steplift_sagemaker.emulator import SageMakerEmulator

    with SageMakerEmulator(mode="execute") as emulator:
        os.environ.update(emulator.client_env())
        boto3.session.Session().client("s3").create_bucket(Bucket="steplift-demo")
        fields = {
            "flavor": "sagemaker",
            "region": emulator.region,
            "role_arn": "arn:aws:iam::123456789012:role/SageMakerRole",
            "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:latest",
            "bucket": "s3://steplift-demo/runs",
            "gpu": "A10G:1",
            "endpoint_url": emulator.endpoint_url,
        }
        yield Emulated(emulator, toml_table(fields))


@contextmanager
def vertex() -> Iterator[Emulated]:
    """The Vertex AI emulator (with its GCS emulator)."""
    from steplift_vertex.emulator.server import VertexEmulator

    with VertexEmulator(mode="execute") as emulator:
        os.environ.update(emulator.client_env())
        fields = {"flavor": "vertex", **emulator.operator_config(), "gpu": "T4:1"}
        yield Emulated(emulator, toml_table(fields))


@contextmanager
def azureml() -> Iterator[Emulated]:
    """The Azure ML emulator (with Azurite for blobs), on serverless compute."""
    from steplift_azureml.emulator import describe_operator_config
    from steplift_azureml.emulator.service import AzureMLEmulator

    with AzureMLEmulator("execute", azurite=True) as emulator:
        os.environ.update(emulator.client_env())
        fields = describe_operator_config(emulator, "azureblob://devstoreaccount1/steplift/demo")
        fields.pop("compute")
        fields["instance_type"] = "Standard_DS3_v2"
        yield Emulated(emulator, toml_table(fields))


EMULATORS: dict[str, Callable[[], AbstractContextManager[Emulated]]] = {
    "sagemaker": sagemaker,
    "vertex": vertex,
    "azureml": azureml,
}


def main(cloud: str) -> None:
    if cloud not in EMULATORS:
        sys.exit(f"usage: python examples/on_emulator.py {{{','.join(EMULATORS)}}}")
    from train import train

    with EMULATORS[cloud]() as emulated, tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "steplift.toml"
        config.write_text(f'default_operator = "{cloud}"\n[operators.{cloud}]\n{emulated.table}')
        os.environ["STEPLIFT_CONFIG"] = str(config)
        print(f"--- {config} ---\n{config.read_text()}")
        metrics = train(20)
        print(f"metrics from the {cloud} emulator:", metrics)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "")
