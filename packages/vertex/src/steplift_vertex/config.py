"""The ``vertex`` operator config: validated before any API call, every error names its field.

    [operators.gpu]
    flavor = "vertex"
    project = "my-project"
    location = "us-central1"
    image = "us-docker.pkg.dev/my-project/train/steplift:latest"
    staging_bucket = "gs://my-bucket/steplift"
    gpu = "A100:8"          # or machine_type = "a2-highgpu-8g"

No google.* module is imported here: a config can be read and checked without the SDK.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator

from steplift.models import parse_gpu
from steplift.operator import StepOperatorConfig
from steplift_vertex.resources import accelerator_name, check_machine, machine_for_gpu

MAX_LABELS = 64
RESERVED_LABEL_PREFIX = "steplift-"
RESERVED_LABELS = 5
"""Labels the operator adds to every job (``steplift-*``)."""
MAX_DISPLAY_NAME = 128
MAX_PREFIX = 40
"""The display-name prefix leaves at least 87 characters for the step attempt's name."""
MAX_TIMEOUT_SECONDS = 30 * 24 * 3600

_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_LOCATION = re.compile(r"^[a-z]+(?:-[a-z]+)+[0-9]+$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SERVICE_ACCOUNT = re.compile(
    r"^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z0-9.-]+\.iam\.gserviceaccount\.com$"
    r"|^[0-9]+-compute@developer\.gserviceaccount\.com$"
)
_NETWORK = re.compile(r"^projects/[0-9]+/global/networks/[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
_PERSISTENT_RESOURCE = re.compile(r"^[a-z][a-z0-9-]{0,61}[a-z0-9]$|^[a-z]$")
_DISPLAY_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
SECRET_VERSION = re.compile(
    r"^projects/(?P<project>[a-z][a-z0-9-]{4,28}[a-z0-9]|[0-9]{1,20})"
    r"/secrets/(?P<secret>[A-Za-z0-9_-]{1,255})"
    r"/versions/(?P<version>latest|[1-9][0-9]{0,18})$"
)
"""A Secret Manager secret version: ``projects/<project>/secrets/<name>/versions/<n|latest>``."""
DEFAULT_SECRETS_ENDPOINT = "https://secretmanager.googleapis.com"


def check_secret_reference(name: str, reference: str) -> str:
    """A Secret Manager secret version name, or ValueError saying what one looks like.

    The message names the variable, not the text given: that may be a value pasted by mistake.
    """
    if not isinstance(reference, str) or not SECRET_VERSION.match(reference):
        raise ValueError(
            f"{name} must reference a Secret Manager secret version: "
            "'projects/<project>/secrets/<name>/versions/<number or latest>'"
        )
    return reference


def check_gcs_uri(value: str) -> str:
    """A ``gs://bucket[/prefix]`` URI with a valid bucket name; returned without a trailing /."""
    if not value.startswith("gs://"):
        raise ValueError("must be a gs:// URI, e.g. 'gs://my-bucket/steplift'")
    bucket, _, prefix = value[len("gs://") :].partition("/")
    if not _BUCKET.match(bucket) or ".." in bucket or "_" in bucket[:1]:
        raise ValueError(
            f"{bucket!r} is not a valid bucket name (3-63 lowercase letters, digits, '-', '_', "
            "'.', starting and ending with a letter or digit)"
        )
    if "//" in prefix:
        raise ValueError("the object prefix must not contain empty path parts ('//')")
    return value.rstrip("/")


def check_labels(labels: dict[str, str], reserved_allowed: bool = False) -> dict[str, str]:
    """Vertex label rules: lowercase keys and values, at most 63 characters, 64 labels."""
    for key, value in labels.items():
        if not _LABEL_KEY.match(key):
            raise ValueError(
                f"label key {key!r} must start with a lowercase letter and use only lowercase "
                "letters, digits, '_' and '-' (at most 63)"
            )
        if not reserved_allowed and key.startswith(RESERVED_LABEL_PREFIX):
            raise ValueError(f"label key {key!r} uses the prefix reserved for steplift")
        if not isinstance(value, str) or not _LABEL_VALUE.match(value):
            raise ValueError(
                f"label value {value!r} of {key!r} must use only lowercase letters, digits, "
                "'_' and '-' (at most 63)"
            )
    limit = MAX_LABELS if reserved_allowed else MAX_LABELS - RESERVED_LABELS
    if len(labels) > limit:
        raise ValueError(
            f"at most {limit} labels (steplift adds {RESERVED_LABELS}), not {len(labels)}"
        )
    return labels


def _check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            "must be an http(s) URL such as 'https://us-central1-aiplatform.googleapis.com'"
        )
    if parts.path not in ("", "/") or parts.query:
        raise ValueError("must be a bare endpoint (scheme, host and port only)")
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost"):
        raise ValueError("plain http is only allowed for a local emulator on 127.0.0.1")
    return value.rstrip("/")


class VertexStepOperatorConfig(StepOperatorConfig):
    """Config of the ``vertex`` flavor: one CustomJob per step attempt."""

    project: str = Field(description="Google Cloud project id (never probed from metadata).")
    location: str = Field(default="us-central1", description="Vertex AI region.")
    image: str = Field(min_length=1, description="Container image with Python and steplift.")
    staging_bucket: str = Field(description="gs:// URI under which step attempts are stored.")
    machine_type: str | None = Field(default=None, description="e.g. 'a2-highgpu-8g'.")
    accelerator_type: str | None = Field(
        default=None, validate_default=True, description="e.g. 'NVIDIA_TESLA_T4' or 'T4'."
    )
    accelerator_count: int | None = Field(
        default=None, ge=1, le=16, validate_default=True, description="GPUs per replica."
    )
    gpu: str | None = Field(
        default=None, validate_default=True, description="'TYPE:COUNT' instead of a machine."
    )
    replica_count: int = Field(
        default=1,
        ge=1,
        le=1000,
        description="Replicas (nodes) per job; above 1 it must equal the step's nodes "
        "(prefer Resources(nodes=N)).",
    )
    boot_disk_size_gb: int | None = Field(default=None, ge=100, le=64000)
    boot_disk_type: Literal["pd-ssd", "pd-standard", "hyperdisk-balanced"] = "pd-ssd"
    spot: bool = Field(default=False, description="Run on Spot VMs (scheduling.strategy SPOT).")
    restart_job_on_worker_restart: bool = False
    service_account: str | None = None
    network: str | None = Field(
        default=None, description="'projects/<number>/global/networks/<name>' for VPC peering."
    )
    persistent_resource_id: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    display_name_prefix: str = Field(default="steplift", min_length=1, max_length=MAX_PREFIX)
    api_endpoint: str | None = Field(
        default=None, description="Vertex AI endpoint (default: https://<location>-aiplatform...)."
    )
    logging_endpoint: str | None = Field(
        default=None,
        description="Cloud Logging endpoint (default: https://logging.googleapis.com).",
    )
    storage_endpoint: str | None = Field(
        default=None, description="Cloud Storage endpoint (default: STORAGE_EMULATOR_HOST or GCS)."
    )
    secrets_endpoint: str | None = Field(
        default=None,
        description="Secret Manager endpoint the job reads `secrets` from (default: "
        "https://secretmanager.googleapis.com; with anonymous credentials: api_endpoint).",
    )
    credentials: Literal["default", "anonymous"] = Field(
        default="default",
        description="'default' uses Application Default Credentials; 'anonymous' is for emulators.",
    )

    @field_validator("max_runtime")
    @classmethod
    def _timeout_fits(cls, value: float | None) -> float | None:
        if value is not None and value > MAX_TIMEOUT_SECONDS:
            raise ValueError(f"Vertex AI jobs run at most {MAX_TIMEOUT_SECONDS} s (30 days)")
        return value

    @field_validator("environment")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not _ENV_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid environment variable name")
        return value

    @field_validator("secrets")
    @classmethod
    def _secret_references(cls, value: dict[str, str]) -> dict[str, str]:
        for name, reference in value.items():
            check_secret_reference(name, reference)
        return value

    @field_validator("project")
    @classmethod
    def _project(cls, value: str) -> str:
        if not _PROJECT.match(value):
            raise ValueError(
                "a project id is 6-30 lowercase letters, digits or '-', starting with a letter"
            )
        return value

    @field_validator("location")
    @classmethod
    def _location(cls, value: str) -> str:
        if not _LOCATION.match(value):
            raise ValueError("must be a Vertex AI region such as 'us-central1'")
        return value

    @field_validator("staging_bucket")
    @classmethod
    def _staging_bucket(cls, value: str) -> str:
        return check_gcs_uri(value)

    @field_validator("machine_type")
    @classmethod
    def _machine_type(cls, value: str | None) -> str | None:
        if value is not None:
            if not re.match(r"^[a-z][a-z0-9]*-[a-z0-9-]+$", value):
                raise ValueError(f"{value!r} is not a machine type name")
            check_machine(value, None, None)
        return value

    @field_validator("accelerator_type")
    @classmethod
    def _accelerator_type(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        name = accelerator_name(value)
        if "machine_type" not in info.data:
            return name  # the machine type itself failed; that error is reported
        machine = info.data["machine_type"]
        if machine is None:
            raise ValueError("an accelerator_type needs a machine_type (or use gpu = 'TYPE:N')")
        check_machine(machine, name, None)
        return name

    @field_validator("accelerator_count")
    @classmethod
    def _accelerator_count(cls, value: int | None, info: ValidationInfo) -> int | None:
        machine = info.data.get("machine_type")
        if "accelerator_type" not in info.data or machine is None:
            if value is not None and machine is None and "machine_type" in info.data:
                raise ValueError("accelerator_count needs a machine_type and accelerator_type")
            return value
        check_machine(machine, info.data["accelerator_type"], value)
        return value

    @field_validator("gpu")
    @classmethod
    def _gpu(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if info.data.get("machine_type") is not None:
            raise ValueError("set either gpu or machine_type, not both")
        gpu_type, count = parse_gpu(value)
        machine_for_gpu(f"{gpu_type}:{count}")
        return f"{gpu_type}:{count}"

    @field_validator("service_account")
    @classmethod
    def _service_account(cls, value: str | None) -> str | None:
        if value is not None and not _SERVICE_ACCOUNT.match(value):
            raise ValueError(
                "must be a service account email (...@PROJECT.iam.gserviceaccount.com)"
            )
        return value

    @field_validator("network")
    @classmethod
    def _network(cls, value: str | None) -> str | None:
        if value is not None and not _NETWORK.match(value):
            raise ValueError("must look like 'projects/<project number>/global/networks/<name>'")
        return value

    @field_validator("persistent_resource_id")
    @classmethod
    def _persistent_resource(cls, value: str | None) -> str | None:
        if value is not None and not _PERSISTENT_RESOURCE.match(value):
            raise ValueError(
                "a persistent resource id is 1-63 lowercase letters, digits or '-', "
                "starting with a letter"
            )
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        return check_labels(value)

    @field_validator("display_name_prefix")
    @classmethod
    def _display_prefix(cls, value: str) -> str:
        if not _DISPLAY_PREFIX.match(value):
            raise ValueError(
                "use letters, digits, '_', '.' and '-' (starting with a letter or digit)"
            )
        return value

    @field_validator("api_endpoint", "logging_endpoint", "storage_endpoint", "secrets_endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value)

    # -- derived ----------------------------------------------------------------------------

    @property
    def vertex_endpoint(self) -> str:
        """The Vertex AI API endpoint in use."""
        return self.api_endpoint or f"https://{self.location}-aiplatform.googleapis.com"

    @property
    def secret_manager_endpoint(self) -> str:
        """Where jobs read ``secrets``: anonymous credentials mean an emulator (api_endpoint)."""
        if self.secrets_endpoint:
            return self.secrets_endpoint
        if self.credentials == "anonymous" and self.api_endpoint:
            return self.api_endpoint
        return DEFAULT_SECRETS_ENDPOINT

    @property
    def parent(self) -> str:
        """``projects/<project>/locations/<location>``."""
        return f"projects/{self.project}/locations/{self.location}"
