"""Secrets Manager secrets reach the step, and their value shows up nowhere else."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from sagemaker_helpers import with_framework_images

import steplift
from steplift.errors import ConfigError
from steplift.runs import RunIndex
from steplift.testing import steps
from steplift_sagemaker.emulator import SageMakerEmulator
from steplift_sagemaker.flavor import FLAVOR

BUCKET = "steplift-secrets"
VALUE = "s3cr3t-value-that-must-not-leak"


@pytest.fixture(scope="module")
def emulator() -> Iterator[SageMakerEmulator]:
    with with_framework_images(SageMakerEmulator(mode="execute")) as running:
        yield running


@pytest.fixture
def secret_arn(
    emulator: SageMakerEmulator, isolated_steplift: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    for key, value in emulator.client_env().items():
        monkeypatch.setenv(key, value)
    session = boto3.session.Session()
    session.client("s3").create_bucket(Bucket=BUCKET)
    secrets = session.client("secretsmanager")
    try:
        arn = secrets.create_secret(Name="api-token", SecretString=VALUE)["ARN"]
    except secrets.exceptions.ResourceExistsException:
        arn = secrets.describe_secret(SecretId="api-token")["ARN"]
    (isolated_steplift / "steplift.toml").write_text(
        f"""
[operators.sm]
flavor = "sagemaker"
region = "{emulator.region}"
role_arn = "arn:aws:iam::123456789012:role/steplift"
image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:latest"
bucket = "s3://{BUCKET}/runs"
endpoint_url = "{emulator.endpoint_url}"
secrets = {{ API_TOKEN = "{arn}" }}
"""
    )
    return str(arn)


def test_the_step_sees_the_secret_and_nothing_else_does(
    emulator: SageMakerEmulator, secret_arn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with steplift.run("secret-sdk") as run:
        digest = steplift.submit(steps.secret_digest, "API_TOKEN").wait(timeout=60)
    assert digest == hashlib.sha256(VALUE.encode()).hexdigest()

    record = RunIndex().steps(run.name)[0]
    assert record.handle is not None
    sagemaker = boto3.session.Session().client("sagemaker")
    described = sagemaker.describe_training_job(TrainingJobName=record.handle.job_id)
    assert secret_arn in json.dumps(described, default=str)  # the reference travels...
    assert VALUE not in json.dumps(described, default=str)  # ...the value does not
    sent = json.dumps([r.params for r in emulator.requests.list()], default=str)
    assert VALUE not in sent
    cli = [sys.executable, "-m", "steplift.cli"]
    outputs = [
        subprocess.run(cli + args, capture_output=True, text=True, check=True)
        for args in (["status", run.name], ["logs", run.name], ["list"])
    ]
    assert all(VALUE not in out.stdout + out.stderr for out in outputs)
    assert "API_TOKEN is set: True" in outputs[1].stdout
    out, err = capsys.readouterr()
    assert VALUE not in out + err


def test_a_command_gets_the_secret_through_the_cli(secret_arn: str) -> None:
    script = (
        "import hashlib, os; print(hashlib.sha256(os.environ['API_TOKEN'].encode()).hexdigest())"
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "steplift.cli",
            "run",
            "--name",
            "secret-cli",
            "--",
            "python",
            "-c",
            script,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert hashlib.sha256(VALUE.encode()).hexdigest() in out.stdout
    assert VALUE not in out.stdout + out.stderr


def test_a_reference_that_is_not_an_arn_is_refused_before_any_call(
    emulator: SageMakerEmulator,
) -> None:
    before = len(emulator.requests.list())
    with pytest.raises(ConfigError) as caught:
        FLAVOR.validate_config(
            {
                "region": "us-east-1",
                "role_arn": "arn:aws:iam::123456789012:role/steplift",
                "image": "i",
                "bucket": "s3://bucket-1/p",
                "secrets": {"API_TOKEN": "my-plain-secret"},
            },
            file="steplift.toml",
            operator="sm",
        )
    assert caught.value.field == "secrets"
    assert "my-plain-secret" not in str(caught.value)  # in case it was the value itself
    assert len(emulator.requests.list()) == before
