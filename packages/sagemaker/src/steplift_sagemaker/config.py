"""Config of the ``sagemaker`` flavor, checked with the rules of the real API before any call."""

from __future__ import annotations

import functools
import re
from typing import NamedTuple, Self

from pydantic import Field, SecretStr, field_validator, model_validator

from steplift.models import FieldProblem
from steplift.operator import StepOperatorConfig
from steplift_sagemaker.resources import check_instance_type, instance_type_for_gpu
from steplift_sagemaker.secrets import SECRET_ARN

ROLE_ARN = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$")
S3_URI = re.compile(r"^s3://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])(/.*)?$")
ENV_KEY = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
TAG_TEXT = re.compile(r"^[\w\s.:/=+\-@]*$")
MAX_TAGS = 50
MAX_RUNTIME_LIMIT = 28 * 24 * 3600  # SageMaker's ceiling for MaxRuntimeInSeconds


class EnvironmentLimits(NamedTuple):
    """SageMaker's limits on a training job's Environment map."""

    variables: int
    name_length: int
    value_length: int


@functools.cache
def environment_limits() -> EnvironmentLimits:
    """The Environment limits of botocore's SageMaker model (``TrainingEnvironmentMap``), the
    ones the service enforces. Read on first use, not at import: loading botocore's model
    costs a fifth of a second that importing the config must not pay."""
    from botocore.loaders import Loader

    shapes = Loader().load_service_model("sagemaker", "service-2")["shapes"]
    environment = shapes["TrainingEnvironmentMap"]
    return EnvironmentLimits(
        variables=environment["max"],
        name_length=shapes[environment["key"]["shape"]]["max"],
        value_length=shapes[environment["value"]["shape"]]["max"],
    )


def check_environment(environment: dict[str, str]) -> dict[str, str]:
    """SageMaker's limits on a training job's Environment map."""
    if not environment:
        return environment
    limits = environment_limits()
    if len(environment) > limits.variables:
        raise ValueError(
            f"SageMaker allows at most {limits.variables} variables, not {len(environment)}"
        )
    for key, value in environment.items():
        if not ENV_KEY.match(key) or len(key) > limits.name_length:
            raise ValueError(
                f"variable name {key!r} must match [a-zA-Z_][a-zA-Z0-9_]* "
                f"(max {limits.name_length})"
            )
        if len(value) > limits.value_length:
            raise ValueError(
                f"value of {key} is {len(value)} characters; SageMaker allows {limits.value_length}"
            )
    return environment


class SageMakerStepOperatorConfig(StepOperatorConfig):
    """Where and how steps run as SageMaker training jobs."""

    region: str = Field(
        pattern=r"^[a-z]{2}(-[a-z]+)+-\d$", description="AWS region, e.g. us-east-1."
    )
    role_arn: str = Field(description="IAM role the training job runs as.")
    image: str = Field(min_length=1, description="Training image (needs Python and steplift).")
    bucket: str = Field(description="s3://bucket/prefix for execution info, inputs and results.")
    instance_type: str | None = Field(default=None, description="Wins over gpu.")
    gpu: str | None = Field(default=None, description="GPU request, e.g. 'A10G:1'.")
    instance_count: int = Field(
        default=1,
        ge=1,
        le=100,
        description="Must be 1 or the step's nodes: a step gets one instance per node "
        "(resources nodes, --nodes); any other count is refused before submitting.",
    )
    volume_size_gb: int = Field(default=30, ge=1, le=16384)
    spot: bool = Field(default=False, description="Managed spot training.")
    max_wait: int | None = Field(
        default=None, ge=1, description="Spot: seconds to wait for capacity plus runtime."
    )
    checkpoint_s3_uri: str | None = Field(
        default=None, description="Spot: where checkpoints survive interruptions."
    )
    keep_alive: int | None = Field(
        default=None, ge=0, le=21600, description="Warm pool: seconds to keep instances."
    )
    subnets: list[str] = Field(default_factory=list, max_length=16)
    security_group_ids: list[str] = Field(default_factory=list, max_length=5)
    kms_key: str | None = Field(default=None, pattern=r"^[a-zA-Z0-9:/_-]*$", max_length=2048)
    tags: dict[str, str] = Field(default_factory=dict)
    max_attempts: int = Field(
        default=5, ge=1, le=20, description="Attempts per AWS call (botocore standard retries)."
    )
    endpoint_url: str | None = Field(
        default=None, description="Send every AWS call here (an emulator on 127.0.0.1)."
    )
    profile: str | None = Field(default=None, description="AWS profile of the launcher.")
    aws_access_key_id: str | None = None
    aws_secret_access_key: SecretStr | None = None

    @field_validator("role_arn")
    @classmethod
    def _role(cls, value: str) -> str:
        if not ROLE_ARN.match(value) or not 20 <= len(value) <= 2048:
            raise ValueError("must be an IAM role ARN like arn:aws:iam::123456789012:role/Name")
        return value

    @field_validator("bucket", "checkpoint_s3_uri")
    @classmethod
    def _s3(cls, value: str | None) -> str | None:
        if value is not None and (not S3_URI.match(value) or len(value) > 1024):
            raise ValueError("must be an s3://bucket/prefix URI")
        return value.rstrip("/") if value else value

    @field_validator("instance_type")
    @classmethod
    def _instance_type(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_instance_type(value)
            except ValueError as error:
                raise ValueError(getattr(error, "problem", str(error))) from None
        return value

    @field_validator("gpu")
    @classmethod
    def _gpu(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                instance_type_for_gpu(value)
            except ValueError as error:
                raise ValueError(getattr(error, "problem", str(error))) from None
        return value

    @field_validator("environment")
    @classmethod
    def _environment(cls, value: dict[str, str]) -> dict[str, str]:
        return check_environment(value)

    @field_validator("max_runtime")
    @classmethod
    def _max_runtime(cls, value: float | None) -> float | None:
        if value is not None and value > MAX_RUNTIME_LIMIT:
            raise ValueError(f"SageMaker allows at most {MAX_RUNTIME_LIMIT} seconds (28 days)")
        return value

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, value: dict[str, str]) -> dict[str, str]:
        for name, reference in value.items():
            if not SECRET_ARN.match(reference):
                raise ValueError(
                    f"{name} must reference an AWS Secrets Manager secret by ARN "
                    "(arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)"
                )
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_TAGS - 4:  # steplift adds its own tags
            raise ValueError(f"at most {MAX_TAGS - 4} tags")
        for key, text in value.items():
            if not 1 <= len(key) <= 128 or not TAG_TEXT.match(key) or key.startswith("aws:"):
                raise ValueError(f"tag key {key!r} is not allowed")
            if len(text) > 256 or not TAG_TEXT.match(text):
                raise ValueError(f"tag value of {key!r} is not allowed")
        return value

    @model_validator(mode="after")
    def _together(self) -> Self:
        """Rules spanning fields, each reported against the field to change."""
        if bool(self.subnets) != bool(self.security_group_ids):
            missing = "security_group_ids" if self.subnets else "subnets"
            raise FieldProblem(missing, "subnets and security_group_ids go together (VPC config)")
        if self.max_wait is not None and not self.spot:
            raise FieldProblem("max_wait", "max_wait only applies to spot training (spot = true)")
        if self.spot and self.keep_alive is not None:
            # SageMaker's warm pools keep on-demand instances only; spot training has none.
            raise FieldProblem(
                "keep_alive", "a warm pool (keep_alive) cannot be used with spot training"
            )
        if self.max_wait is not None and self.max_runtime and self.max_wait < self.max_runtime:
            raise FieldProblem("max_wait", f"must be at least max_runtime ({self.max_runtime:g} s)")
        if (self.aws_access_key_id is None) != (self.aws_secret_access_key is None):
            missing = "aws_secret_access_key" if self.aws_access_key_id else "aws_access_key_id"
            raise FieldProblem(missing, "aws_access_key_id and aws_secret_access_key go together")
        return self
