"""The example training step on a cloud emulator, through a real config file and the real SDK.

    python examples/on_emulator.py {sagemaker,vertex,azureml}

The emulator (installed with the provider's `emulator` extra; Azure ML's also needs Azurite,
see the README) serves the cloud's API on
127.0.0.1 and runs the job as a local process; steplift talks to it with the provider's own
SDK, exactly as it would to the cloud.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from train import train


@contextmanager
def sagemaker() -> Iterator[str]:
    """Start the SageMaker emulator; yield the operator's config table."""
    import boto3

    from steplift_sagemaker.emulator import SageMakerEmulator

    with SageMakerEmulator(mode="execute") as emulator:
        os.environ.update(emulator.client_env())
        boto3.session.Session().client("s3").create_bucket(Bucket="steplift-demo")
        yield f"""\
flavor = "sagemaker"
region = "{emulator.region}"
role_arn = "arn:aws:iam::123456789012:role/SageMakerRole"
image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:latest"
bucket = "s3://steplift-demo/runs"
gpu = "A10G:1"
endpoint_url = "{emulator.endpoint_url}"
"""


def toml_table(fields: dict[str, object]) -> str:
    """An operator's fields as TOML lines (strings only, as the emulators hand them out)."""
    return "".join(f"{key} = {json.dumps(str(value))}\n" for key, value in fields.items())


@contextmanager
def vertex() -> Iterator[str]:
    """Start the Vertex AI emulator (with its GCS emulator); yield the operator's table."""
    from steplift_vertex.emulator.server import VertexEmulator

    with VertexEmulator(mode="execute") as emulator:
        os.environ.update(emulator.client_env())
        yield 'flavor = "vertex"\n' + toml_table({**emulator.operator_config(), "gpu": "T4:1"})


@contextmanager
def azureml() -> Iterator[str]:
    """Start the Azure ML emulator (with Azurite for blobs); yield the operator's table."""
    from steplift_azureml.emulator import describe_operator_config
    from steplift_azureml.emulator.service import AzureMLEmulator

    with AzureMLEmulator("execute", azurite=True) as emulator:
        os.environ.update(emulator.client_env())
        fields = describe_operator_config(emulator, "azureblob://devstoreaccount1/steplift/demo")
        yield toml_table(fields)


EMULATORS: dict[str, Callable[[], AbstractContextManager[str]]] = {
    "sagemaker": sagemaker,
    "vertex": vertex,
    "azureml": azureml,
}


def main(cloud: str) -> None:
    if cloud not in EMULATORS:
        sys.exit(f"usage: python examples/on_emulator.py {{{','.join(EMULATORS)}}}")
    with EMULATORS[cloud]() as operator_table, tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "steplift.toml"
        config.write_text(f'default_operator = "{cloud}"\n[operators.{cloud}]\n{operator_table}')
        os.environ["STEPLIFT_CONFIG"] = str(config)
        print(f"--- {config} ---\n{config.read_text()}")
        metrics = train(20)
        print(f"metrics from the {cloud} emulator:", metrics)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "")
