"""The CreateTrainingJob request of a step attempt, as plain data (no SDK, no call).

:func:`build_request` gives the exact keyword arguments of boto3's ``create_training_job``;
anything SageMaker would refuse is a ``ConfigError`` here, before any call.
"""

from __future__ import annotations

from typing import Any

from steplift.errors import ConfigError
from steplift.models import StepRunInfo
from steplift.store import join_uri
from steplift_sagemaker.config import SageMakerStepOperatorConfig, check_environment
from steplift_sagemaker.resources import step_instance_type

CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
"""Where the job's checkpoints live: CheckpointConfig syncs it with S3 across attempts."""
DEFAULT_MAX_RUNTIME = 86400  # what SageMaker itself assumes when none is given
MAX_CONTAINER_ITEM = 256
MAX_CONTAINER_ITEMS = 100
MAX_JOB_NAME = 63


def job_name(info: StepRunInfo) -> str:
    """The deterministic training-job name of a step attempt."""
    return info.job_name(max_length=MAX_JOB_NAME)


def build_request(
    config: SageMakerStepOperatorConfig,
    info: StepRunInfo,
    entrypoint_command: list[str],
    environment: dict[str, str],
) -> dict[str, Any]:
    """The CreateTrainingJob request; ConfigError for anything SageMaker would refuse."""
    entrypoint, arguments = entrypoint_command[:3], entrypoint_command[3:]
    for field, items in (("entrypoint", entrypoint), ("arguments", arguments)):
        if len(items) > MAX_CONTAINER_ITEMS:
            raise ConfigError(f"SageMaker allows {MAX_CONTAINER_ITEMS} container {field}")
        for item in items:
            if len(item) > MAX_CONTAINER_ITEM:
                raise ConfigError(
                    f"container {field} items are limited to {MAX_CONTAINER_ITEM} characters; "
                    "use shorter bucket, pipeline, run or step names",
                    field="bucket",
                    value=item,
                    has_value=True,
                )
    try:
        check_environment(environment)
    except ValueError as error:
        raise ConfigError(str(error), field="environment") from None
    max_runtime = int(info.max_runtime or config.max_runtime or DEFAULT_MAX_RUNTIME)
    stopping: dict[str, int] = {"MaxRuntimeInSeconds": max(1, max_runtime)}
    spot = info.resources.use_spot(config.spot)
    if spot and config.keep_alive is not None:
        raise ConfigError(
            "a warm pool (keep_alive) cannot be used with spot training; this step asks for spot",
            field="keep_alive",
        )
    if spot:
        stopping["MaxWaitTimeInSeconds"] = config.max_wait or max_runtime + 3600
    step_folder = info.artifact_uri.rsplit("/", 1)[0]
    tags = {
        **config.tags,
        **info.tags,
        "steplift:pipeline": info.pipeline,
        "steplift:run": info.run,
        "steplift:step": info.step,
        "steplift:attempt": str(info.attempt),
    }
    resource_config: dict[str, Any] = {
        "InstanceType": step_instance_type(config, info),
        "InstanceCount": info.resources.nodes,  # one instance per node of the step
        "VolumeSizeInGB": info.resources.disk_gb or config.volume_size_gb,
    }
    if config.keep_alive is not None:
        resource_config["KeepAlivePeriodInSeconds"] = config.keep_alive
    if config.kms_key:
        resource_config["VolumeKmsKeyId"] = config.kms_key
    request: dict[str, Any] = {
        "TrainingJobName": job_name(info),
        "RoleArn": config.role_arn,
        "AlgorithmSpecification": {
            "TrainingImage": info.image or config.image,
            "TrainingInputMode": "File",
            "ContainerEntrypoint": entrypoint,
            **({"ContainerArguments": arguments} if arguments else {}),
        },
        "OutputDataConfig": {
            "S3OutputPath": join_uri(info.artifact_uri, "output"),
            **({"KmsKeyId": config.kms_key} if config.kms_key else {}),
        },
        "ResourceConfig": resource_config,
        "StoppingCondition": stopping,
        "EnableManagedSpotTraining": spot,
        "Environment": environment,
        "Tags": [{"Key": key, "Value": value} for key, value in tags.items()],
        "CheckpointConfig": {
            "S3Uri": config.checkpoint_s3_uri or join_uri(step_folder, "checkpoints"),
            "LocalPath": CHECKPOINT_LOCAL_PATH,
        },
    }
    if config.subnets:
        request["VpcConfig"] = {
            "Subnets": config.subnets,
            "SecurityGroupIds": config.security_group_ids,
        }
    return request
