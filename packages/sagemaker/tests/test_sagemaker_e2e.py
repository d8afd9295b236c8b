"""End to end: the example training step and the CLI through the executing SageMaker emulator."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from sagemaker_helpers import with_framework_images

import steplift
from steplift.errors import StepFailed
from steplift.runs import RunIndex
from steplift.testing import steps
from steplift.testing.processes import read_until, signal_and_wait, steplift_process
from steplift_sagemaker.emulator import SageMakerEmulator

ROOT = Path(__file__).resolve().parents[3]
BUCKET = "steplift-e2e"


@pytest.fixture(scope="module")
def emulator() -> Iterator[SageMakerEmulator]:
    with with_framework_images(SageMakerEmulator(mode="execute")) as running:
        boto3.session.Session().client(
            "s3",
            endpoint_url=running.endpoint_url,
            region_name=running.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_bucket(Bucket=BUCKET)
        yield running


@pytest.fixture
def configured(
    emulator: SageMakerEmulator, isolated_steplift: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A steplift.toml whose default operator is the emulated SageMaker."""
    for key, value in emulator.client_env().items():
        monkeypatch.setenv(key, value)
    (isolated_steplift / "steplift.toml").write_text(
        f"""
default_operator = "sm"
[operators.sm]
flavor = "sagemaker"
region = "{emulator.region}"
role_arn = "arn:aws:iam::123456789012:role/steplift"
image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:latest"
bucket = "s3://{BUCKET}/steplift"
gpu = "A10G:1"
endpoint_url = "{emulator.endpoint_url}"
"""
    )
    return isolated_steplift


def test_the_example_training_step_returns_its_metrics(
    configured: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    import train  # examples/train.py

    with steplift.run("e2e-train") as run:
        metrics = train.train(8)
    assert set(metrics) == {"loss", "test_accuracy", "epochs"}
    assert metrics["epochs"] == 8.0 and 0.5 < metrics["test_accuracy"] <= 1.0
    out = capsys.readouterr().out
    assert "epoch   8/8" in out  # streamed from CloudWatch Logs
    record = RunIndex().steps(run.name)[0]
    assert record.flavor == "sagemaker" and record.state == "SUCCEEDED"


def test_a_failing_step_raises_with_the_remote_traceback(configured: Path) -> None:
    with steplift.run("e2e-fail"), pytest.raises(StepFailed) as caught:
        steplift.submit(steps.fail_with, "no GPU for you").wait(timeout=60)
    assert caught.value.remote_type == "builtins.RuntimeError"
    assert "no GPU for you" in (caught.value.remote_traceback or "")


def test_ctrl_c_in_the_cli_leaves_the_job_stopped(
    configured: Path, emulator: SageMakerEmulator
) -> None:
    script = "import time; print('job started', flush=True); time.sleep(120)"
    with steplift_process("run", "--name", "e2e-sigint", "--", "python", "-c", script) as process:
        assert process.stdout is not None
        read_until(process.stdout, "job started", timeout=60)
        code, err = signal_and_wait(process, signal.SIGINT)
    assert code == 130, err
    record = RunIndex().steps("e2e-sigint")[0]
    assert record.handle is not None
    sagemaker = boto3.session.Session().client("sagemaker", endpoint_url=emulator.endpoint_url)
    described = sagemaker.describe_training_job(TrainingJobName=record.handle.job_id)
    assert described["TrainingJobStatus"] == "Stopped"
    runner = emulator.runner(record.handle.job_id)
    assert runner is not None and runner.process is not None and runner.process.poll() is not None


def test_steplift_operators_validates_the_sagemaker_operator(configured: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "steplift.cli", "operators"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "sagemaker" in out and "valid" in out


def test_steplift_emulator_sagemaker_serves_and_prints_the_client_env() -> None:
    with steplift_process("emulator", "sagemaker", "--port", "0", "--quiet") as process:
        assert process.stdout is not None
        seen = read_until(process.stdout, "AWS_ENDPOINT_URL", timeout=60)
        endpoint = seen.split("AWS_ENDPOINT_URL=", 1)[1].split()[0].strip("'\"")
        assert endpoint.startswith("http://127.0.0.1:")
        client = boto3.session.Session().client(
            "sagemaker",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        assert client.list_training_jobs()["TrainingJobSummaries"] == []
        assert signal_and_wait(process, signal.SIGINT, timeout=30)[0] == 0
