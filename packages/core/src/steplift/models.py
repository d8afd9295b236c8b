"""The data that crosses the contract: what to run, where it runs, what state it is in."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from steplift.errors import ConfigError
from steplift.states import FailureKind, JobState

# Pipeline, run and step names become path components in artifact stores and parts of
# provider job names, so they are kept to a portable alphabet.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
_GPU_PATTERN = re.compile(r"^([A-Za-z][A-Za-z0-9-]*)(?::([0-9]+))?$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def parse_gpu(value: str) -> tuple[str, int]:
    """Split a GPU request such as ``"A10G:1"`` into its type (upper case) and count."""
    match = _GPU_PATTERN.match(value.strip())
    if not match:
        raise ValueError(f"GPU request must look like TYPE:COUNT, e.g. 'A10G:1', not {value!r}")
    count = int(match.group(2) or 1)
    if count < 1:
        raise ValueError(f"GPU count must be at least 1 in {value!r}")
    return match.group(1).upper(), count


class Resources(_Frozen):
    """What a step needs from the machine it runs on."""

    gpu: str | None = Field(default=None, description="GPU type and count, e.g. 'A100:8'.")
    cpu: float | None = Field(default=None, gt=0)
    memory_gb: float | None = Field(default=None, gt=0)
    nodes: int = Field(default=1, ge=1, description="Machines the step spans.")
    processes_per_node: int | Literal["gpu"] = Field(
        default=1,
        description="Processes started per node (torchrun-style); 'gpu': one per GPU.",
    )
    disk_gb: int | None = Field(default=None, ge=1)
    spot: bool | None = Field(
        default=None, description="Spot/preemptible capacity; None: the operator's default."
    )

    @field_validator("gpu")
    @classmethod
    def _normalise_gpu(cls, value: str | None) -> str | None:
        if value is None:
            return None
        gpu_type, count = parse_gpu(value)
        return f"{gpu_type}:{count}"

    @field_validator("processes_per_node")
    @classmethod
    def _check_processes(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("must be at least 1, or 'gpu' for one process per GPU")
        return value

    def processes_for(self, gpus_per_node: int) -> int:
        """Processes per node on machines with that many GPUs: 'gpu' means one per GPU."""
        if self.processes_per_node == "gpu":
            return max(gpus_per_node, 1)
        return self.processes_per_node

    @property
    def gpu_type(self) -> str | None:
        """The GPU model asked for, or None for a CPU step."""
        return parse_gpu(self.gpu)[0] if self.gpu else None

    def use_spot(self, operator_default: bool) -> bool:
        """Whether this step runs on spot capacity, given the operator's default."""
        return operator_default if self.spot is None else self.spot

    @property
    def gpu_count(self) -> int:
        """GPUs per node (0 for a CPU step)."""
        return parse_gpu(self.gpu)[1] if self.gpu else 0


class StepRunInfo(_Frozen):
    """Everything a flavor needs to know about one step attempt."""

    pipeline: str = Field(pattern=NAME_PATTERN)
    run: str = Field(pattern=NAME_PATTERN)
    step: str = Field(pattern=NAME_PATTERN)
    attempt: int = Field(default=1, ge=1)
    resources: Resources = Resources()
    environment: dict[str, str] = Field(default_factory=dict)
    max_runtime: float | None = Field(default=None, gt=0, description="Seconds.")
    max_queue_time: float | None = Field(
        default=None, gt=0, description="Seconds a job may wait for capacity."
    )
    image: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    artifact_uri: str = Field(description="Store URI of this attempt's folder.")

    @property
    def attempt_key(self) -> str:
        """The identity of this step attempt: pipeline/run/step/attempt."""
        return f"{self.pipeline}/{self.run}/{self.step}/{self.attempt}"

    def job_name(
        self, max_length: int = 63, lowercase: bool = False, allowed: str = "A-Za-z0-9-"
    ) -> str:
        """A provider job name derived deterministically from the step attempt.

        The readable part is sanitised to the provider's alphabet (``allowed`` is a regex
        character-class body) and always followed by a hash of the full attempt key, so two
        attempts never share a name even when sanitising or truncating makes them look alike.
        """
        digest = hashlib.sha256(self.attempt_key.encode()).hexdigest()[:8]
        readable = f"{self.pipeline}-{self.run}-{self.step}-{self.attempt}"
        if lowercase:
            readable = readable.lower()
        readable = re.sub(f"[^{allowed}]+", "-", readable).strip("-_")
        readable = readable[: max(1, max_length - len(digest) - 1)].rstrip("-_")
        if not readable or not readable[0].isalpha():
            readable = ("s" + readable)[: max(1, max_length - len(digest) - 1)]
        return f"{readable}-{digest}"


class JobHandle(_Frozen):
    """A reference to a provider job, enough to ask about it from any process."""

    flavor: str
    job_id: str = Field(description="The provider's id (ARN, resource name, job name).")
    name: str = Field(description="The human-readable job name.")
    extra: dict[str, str] = Field(default_factory=dict)


class JobStatus(_Frozen):
    """A job's state, normalised, with the provider's own words kept."""

    state: JobState
    provider_state: str
    message: str = ""
    failure_kind: FailureKind | None = None
    exit_code: int | None = None


@dataclass(frozen=True)
class LogChunk:
    """New log lines since a cursor, and the cursor to pass next time."""

    lines: list[str] = field(default_factory=list)
    cursor: str | None = None


class FieldProblem(ValueError):
    """A rule spanning fields, raised from a model validator, naming the one field to change."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def config_error_from(
    error: ValidationError,
    *,
    file: str | None = None,
    operator: str | None = None,
    prefix: str = "",
) -> ConfigError:
    """Turn pydantic's report into one ConfigError naming the first bad field and value."""
    first: dict[str, Any] = dict(error.errors(include_url=False)[0])
    problem = first.get("ctx", {}).get("error")
    if isinstance(problem, FieldProblem):
        fields = first.get("input")
        given = isinstance(fields, dict) and problem.field in fields
        given = given and "secret" not in problem.field.lower()  # never repeat a secret
        return ConfigError(
            str(problem),
            file=file,
            operator=operator,
            field=f"{prefix}{problem.field}",
            value=fields.get(problem.field) if isinstance(fields, dict) else None,
            has_value=given,
        )
    location = ".".join(str(part) if part != "" else '""' for part in first.get("loc", ()))
    field_name = f"{prefix}{location}" if location else (prefix.rstrip(".") or None)
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if first.get("type") == "extra_forbidden":
        message = "unknown field"
    # A secret's name says where the problem is; its value is never repeated back.
    has_value = first.get("type") != "missing" and "secret" not in (field_name or "").lower()
    return ConfigError(
        message,
        file=file,
        operator=operator,
        field=field_name,
        value=first.get("input"),
        has_value=has_value,
    )
