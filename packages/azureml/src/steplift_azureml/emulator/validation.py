"""Request validation as Azure ML does it: job names, command job bodies (environment,
compute, instance count, job tier, timeout, distribution), environments and bearer tokens.

Every refusal is an :class:`~steplift_azureml.emulator.errors.ApiError` with the code and
inner code the service answers with.
"""

from __future__ import annotations

import re
from collections.abc import Container, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from steplift_azureml.emulator.errors import ApiError, invalid
from steplift_azureml.resources import vm_size

if TYPE_CHECKING:
    from steplift_azureml.emulator.server import Compute

JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")
JOB_TIERS = ("Null", "Spot", "Basic", "Standard", "Premium")
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


@dataclass(frozen=True)
class CommandJob:
    """What a valid command job body asks for."""

    properties: dict[str, Any]
    spot: bool
    """Runs on low-priority capacity (a low-priority cluster or the Spot job tier)."""
    timeout: float | None
    """``limits.timeout`` in seconds."""
    instance_count: int
    distributed: bool
    """Has a PyTorch distribution (the platform starts the processes)."""
    processes_per_instance: int


def parse_duration(value: str) -> float:
    """ISO 8601 duration (``PT1H30M``) → seconds; ValueError when malformed."""
    match = _DURATION.match(value or "")
    if not match or value in ("P", "PT"):
        raise ValueError(f"not an ISO 8601 duration: {value!r}")
    days, hours, minutes, seconds = match.groups()
    return (int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes or 0) * 60) + float(
        seconds or 0
    )


def check_auth(headers: Mapping[str, str]) -> None:
    """Refuse a control-plane request without a bearer token (401)."""
    auth = headers.get("authorization", "")
    if not auth.startswith("Bearer ") or len(auth) <= len("Bearer "):
        raise ApiError(
            401,
            "AuthenticationFailed",
            "Authentication failed: no bearer token.",
            headers=[("WWW-Authenticate", 'Bearer authorization_uri="emulator"')],
        )


def environment_properties(body: Any) -> dict[str, Any]:
    """The properties of an environment version PUT; it needs an image or a build."""
    properties: dict[str, Any] = (body or {}).get("properties") or {}
    if not properties.get("image") and not properties.get("build"):
        raise ApiError(
            400,
            "UserError",
            "An environment needs an image or a build context.",
            "ValidationError",
        )
    return properties


def command_job(
    name: str,
    body: Any,
    *,
    computes: Mapping[str, Compute],
    environments: Container[tuple[str, str]],
    workspace: str,
) -> CommandJob:
    """A job PUT's body checked as the service checks it (``computes`` by lower-case name)."""
    if not JOB_NAME.match(name):
        raise invalid(
            f"Job name '{name}' is invalid: use 1-255 letters, digits, '-' or '_', starting "
            "with a letter or digit."
        )
    properties = (body or {}).get("properties")
    if not isinstance(properties, dict):
        raise invalid("The request body needs 'properties'.")
    if properties.get("jobType") != "Command":
        raise ApiError(
            400,
            "UserError",
            f"The emulator runs Command jobs, not {properties.get('jobType')!r}.",
            "ValidationError",
        )
    if not str(properties.get("command") or "").strip():
        raise ApiError(400, "UserError", "A command job needs a command.", "ValidationError")
    environment_id = str(properties.get("environmentId") or "")
    if not environment_id:
        raise invalid("A command job needs an environment.")
    env_match = re.search(r"/environments/([^/]+)/versions/([^/]+)$", environment_id)
    if (
        env_match
        and not environment_id.startswith("azureml://registries/")
        and (env_match.group(1), env_match.group(2)) not in environments
    ):
        raise ApiError(404, "UserError", f"Environment {environment_id} was not found.", "NotFound")
    resources = properties.get("resources") or {}
    count = resources.get("instanceCount", 1)
    if not isinstance(count, int) or count < 1:
        raise ApiError(
            400, "UserError", "resources.instanceCount must be 1 or more.", "ValidationError"
        )
    spot = False
    compute_id = properties.get("computeId")
    if compute_id:
        compute_name = str(compute_id).rstrip("/").rsplit("/", 1)[-1]
        compute = computes.get(compute_name.lower())
        if compute is None:
            raise ApiError(
                400,
                "UserError",
                f"Compute '{compute_name}' was not found in workspace '{workspace}'.",
                "ComputeNotFound",
            )
        if count > compute.max_nodes:
            raise ApiError(
                400,
                "UserError",
                f"instanceCount {count} exceeds the "
                f"{compute.max_nodes} nodes of cluster '{compute.name}'.",
                "ValidationError",
            )
        spot = compute.low_priority
    else:
        instance_type = resources.get("instanceType")
        if instance_type:
            try:
                vm_size(str(instance_type))
            except ValueError as error:
                raise ApiError(400, "UserError", str(error), "InvalidVmSize") from None
    tier = (properties.get("queueSettings") or {}).get("jobTier")
    if tier is not None and tier not in JOB_TIERS:
        raise ApiError(
            400,
            "UserError",
            f"queueSettings.jobTier {tier!r} is not one of {', '.join(JOB_TIERS)}.",
            "ValidationError",
        )
    spot = spot or tier == "Spot"
    timeout: float | None = None
    limits = properties.get("limits") or {}
    if limits.get("timeout"):
        try:
            timeout = parse_duration(str(limits["timeout"]))
        except ValueError as error:
            raise ApiError(400, "UserError", str(error), "ValidationError") from None
        if timeout <= 0:
            raise ApiError(400, "UserError", "limits.timeout must be positive.", "ValidationError")
    distributed, processes = distribution(properties)
    return CommandJob(properties, spot, timeout, count, distributed, processes)


def distribution(properties: dict[str, Any]) -> tuple[bool, int]:
    """(has a PyTorch distribution, its processCountPerInstance) of a command job."""
    distribution = properties.get("distribution")
    if distribution is None:
        return False, 1
    if not isinstance(distribution, dict):
        raise invalid("distribution must be an object.")
    kind = distribution.get("distributionType")
    if kind != "PyTorch":
        raise invalid(f"The emulator runs PyTorch distributions, not {kind!r}.")
    processes = distribution.get("processCountPerInstance", 1)
    if processes is None:
        processes = 1
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise invalid("distribution.processCountPerInstance must be 1 or more.")
    return True, processes
