"""The sagemaker flavor: config rules, GPU mapping, request shapes, status mapping, logs."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from sagemaker_helpers import MakeOperator

from steplift.errors import ConfigError
from steplift.models import Resources, StepRunInfo
from steplift.states import FailureKind, JobState
from steplift.testing.processes import modules_loaded_by
from steplift_sagemaker.emulator import SageMakerEmulator
from steplift_sagemaker.flavor import FLAVOR
from steplift_sagemaker.resources import TRAINING_INSTANCE_TYPES, instance_type_for_gpu
from steplift_sagemaker.status import failure_kind, status_from_description

ROLE = "arn:aws:iam::123456789012:role/steplift"
BUCKET = "steplift-shapes"
BUCKET_URI = f"s3://{BUCKET}/runs"
BASE = {
    "region": "us-east-1",
    "role_arn": ROLE,
    "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:latest",
    "bucket": f"s3://{BUCKET}/runs",
}


@pytest.fixture(scope="module")
def scripted() -> Iterator[SageMakerEmulator]:
    with SageMakerEmulator(mode="scripted") as running:
        yield running


def info(step: str, **fields: Any) -> StepRunInfo:
    return StepRunInfo(
        pipeline="p",
        run="shapes",
        step=step,
        artifact_uri=f"s3://{BUCKET}/runs/p/shapes/{step}/1",
        **fields,
    )


def sent(emulator: SageMakerEmulator, name: str) -> dict[str, Any]:
    creates = [
        r
        for r in emulator.requests.filter("CreateTrainingJob")
        if r.params["TrainingJobName"] == name
    ]
    assert len(creates) == 1
    return creates[0].params


def test_the_instance_type_table_matches_botocore() -> None:
    from botocore.loaders import Loader

    model = Loader().load_service_model("sagemaker", "service-2")
    assert set(model["shapes"]["TrainingInstanceType"]["enum"]) == TRAINING_INSTANCE_TYPES


@pytest.mark.parametrize(
    ("gpu", "instance_type"),
    [
        ("T4:1", "ml.g4dn.xlarge"),
        ("A10G:4", "ml.g5.12xlarge"),
        ("L4:8", "ml.g6.48xlarge"),
        ("V100:1", "ml.p3.2xlarge"),
        ("A100:8", "ml.p4d.24xlarge"),
        ("H100:8", "ml.p5.48xlarge"),
    ],
)
def test_gpu_requests_map_to_instance_types(gpu: str, instance_type: str) -> None:
    assert instance_type_for_gpu(gpu) == instance_type
    assert instance_type in TRAINING_INSTANCE_TYPES


def test_an_impossible_gpu_request_lists_what_exists() -> None:
    with pytest.raises(ConfigError) as caught:
        instance_type_for_gpu("A10G:3")
    assert "A10G:1, A10G:4, A10G:8" in str(caught.value)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"role_arn": "arn:aws:iam::12:role/x"}, "role_arn"),
        ({"bucket": "s3:/nope"}, "bucket"),
        ({"instance_type": "ml.g5.huge"}, "instance_type"),
        ({"gpu": "Z9:1"}, "gpu"),
        ({"spot": True, "max_runtime": 3600, "max_wait": 60}, "max_wait"),
        ({"security_group_ids": ["sg-1"]}, "subnets"),  # the missing half is named
        ({"keep_alive": 99999}, "keep_alive"),
        ({"tags": {"aws:reserved": "x"}}, "tags"),
        ({"aws_access_key_id": "AKIA"}, "aws_secret_access_key"),
        ({"region": "moon"}, "region"),
    ],
)
def test_config_errors_name_the_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        FLAVOR.validate_config({**BASE, **fields}, file="steplift.toml", operator="gpu")
    assert caught.value.field == field, str(caught.value)
    assert str(caught.value).startswith("steplift.toml: operator 'gpu': field ")


def test_the_environment_limits_match_botocore() -> None:
    from botocore.loaders import Loader

    from steplift_sagemaker.config import environment_limits

    shapes = Loader().load_service_model("sagemaker", "service-2")["shapes"]
    limits = environment_limits()
    assert limits.variables == shapes["TrainingEnvironmentMap"]["max"] == 100
    assert limits.name_length == shapes["TrainingEnvironmentKey"]["max"]
    assert limits.value_length == shapes["TrainingEnvironmentValue"]["max"] == 512


def test_config_refuses_what_create_training_job_refuses() -> None:
    FLAVOR.validate_config({**BASE, "environment": {"K": "v" * 512}})
    with pytest.raises(ConfigError, match="SageMaker allows 512") as caught:
        FLAVOR.validate_config({**BASE, "environment": {"K": "v" * 513}})
    assert caught.value.field == "environment"
    with pytest.raises(ConfigError, match="warm pool") as caught:
        FLAVOR.validate_config({**BASE, "spot": True, "keep_alive": 600})
    assert caught.value.field == "keep_alive"
    FLAVOR.validate_config({**BASE, "spot": True})
    FLAVOR.validate_config({**BASE, "keep_alive": 600})


def test_a_spot_step_on_a_warm_pool_operator_is_refused_before_any_call(
    scripted: SageMakerEmulator, make_operator: MakeOperator
) -> None:
    operator = make_operator(scripted, name="sm", bucket=BUCKET_URI, keep_alive=600)
    before = len(scripted.requests.list())
    with pytest.raises(ConfigError, match="warm pool") as caught:
        operator.submit(info("spot-warm", resources=Resources(spot=True)), ["python"], {})
    assert caught.value.field == "keep_alive"
    assert len(scripted.requests.list()) == before


def test_request_shape_carries_gpu_entrypoint_env_spot_tags_and_timeouts(
    scripted: SageMakerEmulator, make_operator: MakeOperator
) -> None:
    operator = make_operator(
        scripted,
        name="sm",
        bucket=BUCKET_URI,
        gpu="T4:1",
        spot=True,
        max_runtime=1800,
        tags={"team": "ml"},
        environment={"FROM_CONFIG": "1"},
    )
    # A warm pool is on-demand only (spot with keep_alive is refused): its own operator.
    warm = make_operator(scripted, name="sm-warm", bucket=BUCKET_URI, gpu="T4:1", keep_alive=600)
    step = info(
        "shape",
        resources=Resources(gpu="A10G:4", disk_gb=100),
        environment={"FROM_STEP": "2"},
        tags={"kind": "test"},
    )
    command = [
        "python",
        "-m",
        "steplift.entrypoint",
        "--execution-info-uri",
        "s3://x/y",
        "--execution-info-sha256",
        "ab",
    ]
    handle = operator.submit(step, command, operator.job_environment(step))
    request = sent(scripted, handle.job_id)
    warm_step = info("shape-warm", resources=Resources(gpu="A10G:4", disk_gb=100))
    warm_handle = warm.submit(warm_step, command, warm.job_environment(warm_step))
    assert sent(scripted, warm_handle.job_id)["ResourceConfig"] == {
        "InstanceType": "ml.g5.12xlarge",
        "InstanceCount": 1,
        "VolumeSizeInGB": 100,
        "KeepAlivePeriodInSeconds": 600,
    }
    assert request["ResourceConfig"] == {
        "InstanceType": "ml.g5.12xlarge",
        "InstanceCount": 1,
        "VolumeSizeInGB": 100,
    }
    assert request["AlgorithmSpecification"]["ContainerEntrypoint"] == command[:3]
    assert request["AlgorithmSpecification"]["ContainerArguments"] == command[3:]
    assert request["Environment"] == {
        "FROM_CONFIG": "1",
        "FROM_STEP": "2",
        "STEPLIFT_CHECKPOINT_DIR": "/opt/ml/checkpoints",
    }
    assert request["CheckpointConfig"]["LocalPath"] == "/opt/ml/checkpoints"
    assert request["EnableManagedSpotTraining"] is True
    assert request["StoppingCondition"] == {
        "MaxRuntimeInSeconds": 1800,
        "MaxWaitTimeInSeconds": 5400,
    }
    assert request["CheckpointConfig"]["S3Uri"] == f"s3://{BUCKET}/runs/p/shapes/shape/checkpoints"
    tags = {tag["Key"]: tag["Value"] for tag in request["Tags"]}
    assert tags["team"] == "ml" and tags["kind"] == "test" and tags["steplift:run"] == "shapes"
    assert handle.job_id == step.job_name(max_length=63)


def test_resubmitting_adopts_the_existing_job(
    scripted: SageMakerEmulator, make_operator: MakeOperator
) -> None:
    operator = make_operator(scripted, name="sm", bucket=BUCKET_URI)
    step = info("twice")
    first = operator.submit(step, ["python"], {})
    again = operator.submit(step, ["python"], {})
    assert again.job_id == first.job_id
    assert operator.find_job(step) is not None
    assert operator.find_job(info("never")) is None


def test_scripted_lifecycle_is_normalised(
    scripted: SageMakerEmulator, make_operator: MakeOperator
) -> None:
    operator = make_operator(scripted, name="sm", bucket=BUCKET_URI)
    handle = operator.submit(info("life"), ["python"], {})
    states = [operator.get_status(handle).state for _ in range(5)]
    assert states[0] is JobState.PENDING
    assert JobState.RUNNING in states
    assert states[-1] is JobState.SUCCEEDED


def test_bad_input_makes_no_api_call(
    scripted: SageMakerEmulator, make_operator: MakeOperator
) -> None:
    operator = make_operator(scripted, name="sm", bucket=BUCKET_URI)
    before = len(scripted.requests.list())
    with pytest.raises(ConfigError, match="at most 100 variables"):
        operator.submit(info("env"), ["python"], {f"K{i}": "v" for i in range(101)})
    with pytest.raises(ConfigError, match="no training instance"):
        operator.submit(info("gpu", resources=Resources(gpu="A100:3")), ["python"], {})
    assert len(scripted.requests.list()) == before


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        (
            "ResourceLimitExceeded: The account-level service limit 'ml.p4d.24xlarge for "
            "training job usage' is 0 Instances",
            FailureKind.QUOTA,
        ),
        ("CapacityError: Unable to provision requested ML compute capacity.", FailureKind.CAPACITY),
        ("AlgorithmError: See job logs for more information, exit code: 1", FailureKind.USER_CODE),
        ("ClientError: Cannot pull image 123.dkr.ecr/x", FailureKind.IMAGE),
        (
            "InternalServerError: We encountered an internal error. Please try again.",
            FailureKind.INFRASTRUCTURE,
        ),
    ],
)
def test_failure_reasons_map_to_kinds(reason: str, kind: FailureKind) -> None:
    assert failure_kind(reason) is kind
    status = status_from_description(
        {"TrainingJobStatus": "Failed", "SecondaryStatus": "Failed", "FailureReason": reason}
    )
    assert (
        status.state is JobState.FAILED and status.failure_kind is kind and status.message == reason
    )


def test_stopped_by_max_runtime_is_a_timeout() -> None:
    status = status_from_description(
        {"TrainingJobStatus": "Stopped", "SecondaryStatus": "MaxRuntimeExceeded"}
    )
    assert status.state is JobState.FAILED and status.failure_kind is FailureKind.TIMEOUT
    stopped = status_from_description(
        {"TrainingJobStatus": "Stopped", "SecondaryStatus": "Stopped"}
    )
    assert stopped.state is JobState.CANCELLED


def test_logs_are_read_incrementally_without_duplicates(
    scripted: SageMakerEmulator, make_operator: MakeOperator
) -> None:
    operator = make_operator(scripted, name="sm", bucket=BUCKET_URI)
    handle = operator.submit(info("logs"), ["python"], {})
    logs = boto3.session.Session().client("logs", endpoint_url=scripted.endpoint_url)
    group, stream = "/aws/sagemaker/TrainingJobs", f"{handle.job_id}/algo-1-1700000000"
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": now + i, "message": f"line {i}"} for i in range(3)],
    )
    first = operator.read_logs(handle, None)
    assert first.lines == ["line 0", "line 1", "line 2"]
    assert operator.read_logs(handle, first.cursor).lines == []
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": now + 10, "message": "line 3"}],
    )
    assert operator.read_logs(handle, first.cursor).lines == ["line 3"]


def test_importing_the_flavor_imports_no_sdk() -> None:
    code = (
        "import steplift_sagemaker.flavor as f\n"
        "f.FLAVOR.validate_config({'region': 'us-east-1', 'role_arn': "
        f"'{ROLE}', 'image': 'i', 'bucket': 's3://bucket-1/p', 'gpu': 'A10G:1'}})"
    )
    assert modules_loaded_by(code) == []


def test_a_throttling_storm_slows_the_launch_down_but_creates_one_job(
    scripted: SageMakerEmulator, make_operator: MakeOperator
) -> None:
    from steplift.operator import LaunchObserver
    from steplift.testing import ConformanceClock
    from steplift.testing.emulation import Faults

    clock = ConformanceClock(real_pause=0)
    operator = make_operator(
        scripted, clock=clock.now, sleep=clock.sleep, bucket=BUCKET_URI, max_attempts=1
    )
    boto3.session.Session().client("s3", endpoint_url=scripted.endpoint_url).create_bucket(
        Bucket=BUCKET
    )
    warnings: list[str] = []

    class Warnings(LaunchObserver):
        def on_warning(self, message: str) -> None:
            warnings.append(message)

    step = info("storm")
    scripted.set_faults(Faults(throttle_rate=0.5, error_rate=0.1, seed=7))
    try:
        operator.launch(step, ["python", "-m", "steplift.entrypoint"], observer=Warnings())
    finally:
        scripted.set_faults(Faults())
    assert any("ThrottlingException" in warning for warning in warnings)
    jobs = boto3.session.Session().client("sagemaker", endpoint_url=scripted.endpoint_url)
    names = [
        j["TrainingJobName"]
        for j in jobs.list_training_jobs(NameContains="storm")["TrainingJobSummaries"]
    ]
    assert names == [step.job_name(max_length=63)]
    assert operator.get_status(operator.find_job(step)).state is JobState.SUCCEEDED  # type: ignore[arg-type]


def test_a_quota_refusal_at_create_is_a_quota_failure(
    scripted: SageMakerEmulator, make_operator: MakeOperator
) -> None:
    from steplift.errors import StepFailed
    from steplift.testing.emulation import Faults

    operator = make_operator(scripted, name="sm", bucket=BUCKET_URI)
    scripted.set_faults(Faults(refuse_create="quota"))
    try:
        with pytest.raises(StepFailed) as caught:
            operator.submit(info("quota"), ["python"], {})
    finally:
        scripted.set_faults(Faults())
    assert caught.value.failure_kind is FailureKind.QUOTA
    assert "service limit" in str(caught.value)
    assert operator.find_job(info("quota")) is None


def test_credentials_stay_out_of_the_run_index() -> None:
    flavor = FLAVOR
    config = flavor.validate_config(
        {**BASE, "aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": "very-secret"}
    )
    portable = flavor.create(config).portable_config()
    assert "aws_access_key_id" not in portable and "aws_secret_access_key" not in portable
    assert "very-secret" not in json.dumps(portable)
    assert flavor.validate_config(portable) is not None  # still rebuilds an operator


def test_the_emulator_says_how_to_reach_it_and_which_attempt_a_job_is(
    scripted: SageMakerEmulator, make_operator: MakeOperator
) -> None:
    from steplift_sagemaker.secrets import SECRET_ARN

    config = scripted.operator_config(gpu="T4:1")
    assert config["flavor"] == "sagemaker" == scripted.flavor
    assert config["endpoint_url"] == scripted.endpoint_url and config["gpu"] == "T4:1"
    operator = make_operator(scripted)  # every field the emulator's: its own bucket too
    s3 = boto3.session.Session().client("s3", endpoint_url=scripted.endpoint_url)
    s3.head_bucket(Bucket=operator.config.bucket.removeprefix("s3://").split("/")[0])
    step = info("attempt-key")
    handle = operator.submit(step, ["python"], {})
    assert scripted.attempt_key(handle.job_id.upper()) == operator.job_name(step)
    with pytest.raises(KeyError):
        scripted.attempt_key("no-such-job")

    arn = scripted.add_secret("emulated-secret", "one")
    assert SECRET_ARN.match(arn)
    assert scripted.add_secret("emulated-secret", "two") == arn
    value = boto3.session.Session().client("secretsmanager").get_secret_value(SecretId=arn)
    assert value["SecretString"] == "two"
