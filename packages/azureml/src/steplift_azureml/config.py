"""The ``azureml`` flavor's config: workspace, compute, environment, storage and cloud.

Everything is checked here, before any call: a bad subscription id, workspace or cluster
name, an unknown VM size, a GPU no size offers or a missing compute is refused with the field
named. Importing this module imports no Azure SDK.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, field_validator, model_validator

from steplift.models import FieldProblem, parse_gpu
from steplift.operator import StepOperatorConfig
from steplift_azureml.resources import vm_size, vm_size_for_gpu
from steplift_azureml.secrets import describe_bad_reference, parse_reference

GUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
RESOURCE_GROUP_PATTERN = r"^[-\w.()]{0,89}[-\w()]$"
WORKSPACE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{2,32}$"
COMPUTE_PATTERN = r"^[A-Za-z][A-Za-z0-9-]{1,15}$"
EXPERIMENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$"
ENVIRONMENT_PATTERN = r"^(azureml:)?[A-Za-z0-9][A-Za-z0-9._-]{0,254}(:[A-Za-z0-9._-]+|@latest)$"
BLOB_URI = re.compile(
    r"^azureblob://([a-z0-9]{3,24})/([a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62})(/.*)?$"
)

JobTier = Literal["Spot", "Basic", "Standard", "Premium"]


class AzureMLStepOperatorConfig(StepOperatorConfig):
    """Config of the ``azureml`` flavor (``[operators.NAME]`` with ``flavor = "azureml"``)."""

    subscription_id: str = Field(pattern=GUID_PATTERN, description="Azure subscription id.")
    resource_group: str = Field(pattern=RESOURCE_GROUP_PATTERN)
    workspace: str = Field(pattern=WORKSPACE_PATTERN, description="Azure ML workspace name.")
    artifact_root: str = Field(
        description="Blob folder for execution info and results: azureblob://ACCOUNT/CONTAINER/PATH"
    )

    image: str | None = Field(
        default=None, min_length=1, description="Docker image run as an anonymous environment."
    )
    environment_name: str | None = Field(
        default=None,
        pattern=ENVIRONMENT_PATTERN,
        description="A registered environment, 'name:version' or 'name@latest'.",
    )

    region: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9]*$",
        description="The workspace's Azure region (eastus, westus2...): where steplift looks "
        "up compute prices; nothing else uses it.",
    )
    compute: str | None = Field(default=None, pattern=COMPUTE_PATTERN, description="Cluster name.")
    instance_type: str | None = Field(
        default=None, description="Serverless VM size, e.g. Standard_NC24ads_A100_v4."
    )
    gpu: str | None = Field(default=None, description="Default GPU request, e.g. 'A100:1'.")
    gpu_clusters: dict[str, str] = Field(
        default_factory=dict,
        description="GPU type → cluster that has it; GPU steps without one run serverless.",
    )
    instance_count: int = Field(default=1, ge=1, le=100)
    spot: bool = Field(default=False, description="Run on spot capacity by default.")
    spot_compute: str | None = Field(
        default=None, pattern=COMPUTE_PATTERN, description="Low-priority cluster for spot steps."
    )
    job_tier: JobTier | None = Field(
        default=None, description="Serverless queue tier (spot steps use 'Spot')."
    )

    experiment_name: str = Field(default="steplift", pattern=EXPERIMENT_PATTERN)
    tags: dict[str, str] = Field(default_factory=dict)
    identity: Literal["user_identity", "managed", "aml_token"] | None = Field(
        default=None, description="Identity the job runs as."
    )

    checkpoint_datastore: str | None = Field(
        default="workspaceblobstore",
        pattern=r"^[A-Za-z0-9_]{1,255}$",
        description="Datastore mounted read-write as the step's checkpoint folder (None: off).",
    )
    checkpoint_path: str = Field(
        default="steplift/checkpoints",
        pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$",
        description="Folder in that datastore; checkpoints go to PATH/PIPELINE/RUN/STEP.",
    )

    credential: Literal["default", "managed_identity", "azure_cli", "environment"] = "default"
    managed_identity_client_id: str | None = Field(default=None, pattern=GUID_PATTERN)
    cloud: str = Field(
        default="AzureCloud",
        pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$",
        description="Azure cloud name (AzureCloud, AzureChinaCloud, AzureUSGovernment, ...).",
    )
    cloud_endpoint: str | None = Field(
        default=None,
        description="https base URL of a custom cloud (e.g. the emulator): resource manager, "
        "login and registry discovery are all served there.",
    )
    storage_suffix: str = Field(default="core.windows.net", min_length=1)

    retry_total: int = Field(default=10, ge=0, le=50, description="Transport retries per call.")
    retry_backoff: float = Field(default=0.8, ge=0, le=60, description="Backoff factor, seconds.")
    retry_backoff_max: float = Field(default=120.0, ge=0, le=600)

    @field_validator("artifact_root")
    @classmethod
    def _check_artifact_root(cls, value: str) -> str:
        if not BLOB_URI.match(value):
            raise ValueError(
                "must be azureblob://ACCOUNT/CONTAINER[/PATH] with a valid storage account "
                "(3-24 lower-case letters/digits) and container name"
            )
        return value.rstrip("/")

    @field_validator("image")
    @classmethod
    def _check_image(cls, value: str | None) -> str | None:
        if value is not None and (any(ch.isspace() for ch in value) or value != value.strip()):
            raise ValueError("an image reference has no whitespace")
        return value

    @field_validator("instance_type")
    @classmethod
    def _check_instance_type(cls, value: str | None) -> str | None:
        return None if value is None else vm_size(value).name

    @field_validator("gpu")
    @classmethod
    def _check_gpu(cls, value: str | None) -> str | None:
        if value is None:
            return None
        gpu_type, count = parse_gpu(value)
        vm_size_for_gpu(f"{gpu_type}:{count}")
        return f"{gpu_type}:{count}"

    @field_validator("gpu_clusters")
    @classmethod
    def _check_gpu_clusters(cls, value: dict[str, str]) -> dict[str, str]:
        checked: dict[str, str] = {}
        for gpu_type, cluster in value.items():
            if not re.match(r"^[A-Za-z][A-Za-z0-9-]*$", gpu_type):
                raise ValueError(f"{gpu_type!r} is not a GPU type such as 'A100'")
            if not re.match(COMPUTE_PATTERN, cluster):
                raise ValueError(
                    f"cluster name {cluster!r} must be 2-16 letters, digits or hyphens, "
                    "starting with a letter"
                )
            checked[gpu_type.upper()] = cluster
        return checked

    @field_validator("secrets")
    @classmethod
    def _check_secrets(cls, value: dict[str, str]) -> dict[str, str]:
        # Real Key Vault URIs only, also against the emulator: it is reached by the job's
        # STEPLIFT_AZUREML_KEYVAULT_ENDPOINT, never by a looser reference (see secrets.py).
        # The message quotes a reference only when it looks like a URL: anything else may be
        # the secret itself, pasted where its reference belongs (the ConfigError of a field
        # named "secrets" never repeats its value either).
        checked: dict[str, str] = {}
        for name, reference in value.items():
            try:
                checked[name] = parse_reference(reference).uri
            except ValueError:
                raise ValueError(f"{name}: {describe_bad_reference(reference)}") from None
        return checked

    @field_validator("cloud_endpoint")
    @classmethod
    def _check_cloud_endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parsed = urlparse(value)
        if parsed.scheme != "https" or not parsed.hostname:
            raise ValueError("must be an https:// URL (Azure clients refuse tokens over http)")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _check_combinations(self) -> AzureMLStepOperatorConfig:
        if self.image and self.environment_name:
            raise FieldProblem("environment_name", "set image or environment_name, not both")
        if not self.image and not self.environment_name:
            raise FieldProblem("image", "set image (a Docker image) or environment_name")
        if self.instance_type and self.gpu:
            raise FieldProblem("gpu", "set gpu or instance_type, not both")
        if not (self.compute or self.instance_type or self.gpu or self.gpu_clusters):
            raise FieldProblem(
                "compute",
                "no compute: set compute (a cluster), or instance_type or gpu (serverless)",
            )
        if self.spot and self.compute and not self.spot_compute and not self.instance_type:
            raise FieldProblem(
                "spot_compute", "spot on a cluster needs spot_compute (a low-priority cluster)"
            )
        return self
