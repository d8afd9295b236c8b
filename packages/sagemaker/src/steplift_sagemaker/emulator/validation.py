"""Server-side validation of SageMaker requests, as the real service refuses them.

botocore validates only types, required members and minimum lengths before sending; the service
itself also enforces maximum lengths, patterns, enums and ranges from its model and answers
`ValidationException: N validation error(s) detected: Value '...' at 'path' failed to satisfy
constraint: Member must ...`. The constraints are read from botocore's own SageMaker model, so
they track the installed botocore. Rules that are not in the model are checked by hand below.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape

from .errors import ApiError, validation_error

_MAX_REPORTED = 10


@functools.cache
def service_model() -> ServiceModel:
    """botocore's SageMaker service model (loaded once per process)."""
    return botocore.session.get_session().get_service_model("sagemaker")


def operation_model(operation: str) -> OperationModel:
    """The model of one SageMaker operation."""
    return service_model().operation_model(operation)


def instance_types() -> list[str]:
    """Every training instance type the service model allows."""
    shape = service_model().shape_for("TrainingInstanceType")
    return list(getattr(shape, "enum", []))


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:  # a Java-only construct: the service checks it, we cannot
        return None


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _render(value: Any) -> str:
    """A value the way the service's (Java) messages print it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}={_render(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_render(v) for v in value) + "]"
    return str(value)


def _scalar_rules(shape: Shape, value: Any) -> list[str]:
    """The 'Member must ...' rules a scalar or collection value breaks."""
    meta = shape.metadata
    rules: list[str] = []
    if shape.type_name == "string" and isinstance(value, str):
        enum = getattr(shape, "enum", None)
        if enum and value not in enum:
            rules.append(f"Member must satisfy enum value set: [{', '.join(enum)}]")
        if "max" in meta and len(value) > meta["max"]:
            rules.append(f"Member must have length less than or equal to {meta['max']}")
        if "min" in meta and len(value) < meta["min"]:
            rules.append(f"Member must have length greater than or equal to {meta['min']}")
        pattern = meta.get("pattern")
        compiled = _compiled(pattern) if isinstance(pattern, str) else None
        if compiled is not None and compiled.fullmatch(value) is None:
            assert isinstance(pattern, str)
            shown = pattern if pattern.startswith("^") else f"^{pattern}"
            rules.append(f"Member must satisfy regular expression pattern: {shown}")
    elif shape.type_name in ("integer", "long", "float", "double") and isinstance(
        value, int | float
    ):
        if "max" in meta and value > meta["max"]:
            rules.append(f"Member must have value less than or equal to {meta['max']}")
        if "min" in meta and value < meta["min"]:
            rules.append(f"Member must have value greater than or equal to {meta['min']}")
    elif shape.type_name in ("list", "map") and isinstance(value, list | Mapping):
        if "max" in meta and len(value) > meta["max"]:
            rules.append(f"Member must have length less than or equal to {meta['max']}")
        if "min" in meta and len(value) < meta["min"]:
            rules.append(f"Member must have length greater than or equal to {meta['min']}")
    return rules


def shape_violations(shape: Shape, value: Any, path: str) -> list[str]:
    """Every constraint violation of `value` against `shape`, as the service words them."""
    found = [
        f"Value '{_render(value)}' at '{path}' failed to satisfy constraint: {rule}"
        for rule in _scalar_rules(shape, value)
    ]
    if isinstance(shape, StructureShape) and isinstance(value, Mapping):
        for name, member in shape.members.items():
            member_path = f"{path}.{_camel(name)}" if path else _camel(name)
            if value.get(name) is None:
                if name in shape.required_members:
                    found.append(
                        f"Value null at '{member_path}' failed to satisfy constraint: "
                        "Member must not be null"
                    )
                continue
            found.extend(shape_violations(member, value[name], member_path))
    elif isinstance(shape, ListShape) and isinstance(value, list):
        for index, item in enumerate(value, start=1):
            found.extend(shape_violations(shape.member, item, f"{path}.{index}.member"))
    elif isinstance(shape, MapShape) and isinstance(value, Mapping):
        for key, item in value.items():
            key_rules = _scalar_rules(shape.key, key)
            if key_rules:
                found.append(
                    f"Value '{_render(value)}' at '{path}' failed to satisfy constraint: "
                    f"Map keys must satisfy constraint: [{', '.join(key_rules)}]"
                )
            value_rules = _scalar_rules(shape.value, item)
            if value_rules:
                found.append(
                    f"Value '{_render(value)}' at '{path}' failed to satisfy constraint: "
                    f"Map value must satisfy constraint: [{', '.join(value_rules)}]"
                )
    return found


def validate_against_model(operation: str, params: Mapping[str, Any]) -> None:
    """Raise the service's ValidationException if `params` break the operation's model."""
    input_shape = operation_model(operation).input_shape
    if input_shape is None:
        return
    found = shape_violations(input_shape, params, "")
    if not found:
        return
    noun = "error" if len(found) == 1 else "errors"
    raise validation_error(
        f"{len(found)} validation {noun} detected: " + "; ".join(found[:_MAX_REPORTED])
    )


def _s3_uri_problem(uri: str, field: str) -> ApiError | None:
    if re.fullmatch(r"s3://[^/]+(/.*)?", uri):
        return None
    return validation_error(f"Invalid S3 URI '{uri}' for {field}: it must start with s3://")


def validate_create_training_job(params: Mapping[str, Any]) -> None:
    """All the checks CreateTrainingJob makes before a job exists (raises ApiError)."""
    validate_against_model("CreateTrainingJob", params)
    algorithm = params.get("AlgorithmSpecification")
    if (
        isinstance(algorithm, Mapping)
        and not algorithm.get("TrainingImage")
        and not algorithm.get("AlgorithmName")
    ):
        # Both members are optional in the model; the service wants one of them
        # (API_AlgorithmSpecification: "You must specify either the algorithm name to the
        # AlgorithmName parameter or the image URI of the algorithm container to the
        # TrainingImage parameter").
        raise validation_error(
            "You must specify either AlgorithmName or TrainingImage in AlgorithmSpecification."
        )
    uris = [
        (params["OutputDataConfig"]["S3OutputPath"], "OutputDataConfig.S3OutputPath"),
    ]
    checkpoint = params.get("CheckpointConfig")
    if checkpoint:
        uris.append((checkpoint["S3Uri"], "CheckpointConfig.S3Uri"))
    for channel in params.get("InputDataConfig") or []:
        s3_source = (channel.get("DataSource") or {}).get("S3DataSource")
        if s3_source:
            uris.append((s3_source["S3Uri"], f"channel {channel['ChannelName']} S3Uri"))
    for uri, field in uris:
        problem = _s3_uri_problem(uri, field)
        if problem:
            raise problem
    stopping = params.get("StoppingCondition") or {}
    if params.get("EnableManagedSpotTraining"):
        max_wait = stopping.get("MaxWaitTimeInSeconds")
        max_runtime = stopping.get("MaxRuntimeInSeconds", 86400)
        if max_wait is None or max_wait < max_runtime:
            # Wording as SageMaker returns it for spot jobs.
            raise validation_error(
                "Invalid MaxWaitTimeInSeconds. It must be present and be greater than or "
                "equal to MaxRuntimeInSeconds"
            )
