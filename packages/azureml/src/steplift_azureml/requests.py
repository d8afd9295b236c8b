"""The command job a step attempt becomes, as plain data: no SDK import, no call.

:func:`build_request` is the body of the job's ``PUT .../workspaces/{ws}/jobs/{name}`` as
JSON-able data with the REST API's field names (``properties.jobType``, ``computeId``,
``resources.instanceType``, ``limits.timeout`` as an ISO 8601 duration...), plus the job's
``name`` (the last part of the PUT's path). The operator turns it into ``azure-ai-ml``'s
``command(...)``. Two references are left for the client to resolve, as it does for every
job: ``environmentId`` holds the configured environment reference (``name:version``,
``name@latest``), and a step with an image has no ``environmentId`` but an ``environment``
entry (``{"image": ...}``): the anonymous environment the client registers first.

Every check Azure ML would make of the step's placement is made here first, as a
:class:`~steplift.errors.ConfigError` before any call (:func:`placement`).
"""

from __future__ import annotations

import math
import re
import shlex
from typing import Any

from steplift.errors import ConfigError
from steplift.models import StepRunInfo, parse_gpu
from steplift_azureml.config import AzureMLStepOperatorConfig
from steplift_azureml.resources import VM_SIZES, resolve_vm_size

JOB_NAME_MAX = 128
ATTEMPT_TAG = "steplift.attempt"
"""The tag every steplift job carries: the jobs list is filtered to jobs that have it."""
CHECKPOINT_ENV = "STEPLIFT_CHECKPOINT_DIR"
CHECKPOINT_OUTPUT = "steplift_checkpoints"
# Azure ML replaces ${{outputs.NAME}} in a job's command with where it mounted that output.
CHECKPOINT_PLACEHOLDER = "${{outputs." + CHECKPOINT_OUTPUT + "}}"
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
IDENTITY_TYPES = {"user_identity": "UserIdentity", "managed": "Managed", "aml_token": "AMLToken"}
"""The config's ``identity`` → the REST ``identity.identityType``."""


def job_name(info: StepRunInfo) -> str:
    """The Azure ML job name of a step attempt (deterministic: a relaunch finds the job)."""
    return info.job_name(max_length=JOB_NAME_MAX, allowed="A-Za-z0-9_-")


def workspace_id(config: AzureMLStepOperatorConfig) -> str:
    """The workspace's ARM id."""
    return (
        f"/subscriptions/{config.subscription_id}/resourceGroups/{config.resource_group}"
        f"/providers/Microsoft.MachineLearningServices/workspaces/{config.workspace}"
    )


def checkpoint_uri(config: AzureMLStepOperatorConfig, info: StepRunInfo) -> str:
    """The datastore folder that holds a step's checkpoints (all attempts)."""
    return (
        f"azureml://datastores/{config.checkpoint_datastore}/paths/{config.checkpoint_path}"
        f"/{info.pipeline}/{info.run}/{info.step}"
    )


def placement(config: AzureMLStepOperatorConfig, info: StepRunInfo) -> dict[str, Any]:
    """compute / instance_type / job_tier / instance_count for a step; ConfigError early.

    A GPU step runs on the cluster configured for its GPU type, else serverless on the
    smallest VM size with those GPUs. A CPU step runs on ``compute`` when set, else
    serverless on ``instance_type`` (or the smallest size with the CPU/memory asked for).
    """
    resources = info.resources
    spot = resources.use_spot(config.spot)
    gpu = resources.gpu or config.gpu
    if config.instance_count not in (1, resources.nodes):
        # The entrypoint would find a cluster of another size than the step asked for.
        raise ConfigError(
            f"instance_count = {config.instance_count} would run this step on "
            f"{config.instance_count} nodes, but it asks for {resources.nodes}; ask for "
            "nodes on the step (Resources(nodes=N), --nodes N) instead",
            field="instance_count",
            value=config.instance_count,
            has_value=True,
        )
    chosen: dict[str, Any] = {"instance_count": resources.nodes}
    if gpu and gpu.split(":")[0].upper() in config.gpu_clusters:
        cluster = config.gpu_clusters[gpu.split(":")[0].upper()]
        chosen["compute"] = config.spot_compute if spot and config.spot_compute else cluster
        return chosen
    if not gpu and config.compute:
        if spot and not config.spot_compute:
            raise ConfigError(
                "a spot step on a cluster needs spot_compute (a low-priority cluster)",
                field="spot_compute",
            )
        chosen["compute"] = config.spot_compute if spot else config.compute
        return chosen
    size = resolve_vm_size(resources.model_copy(update={"gpu": gpu}))
    if size is not None:
        chosen["instance_type"] = size.name
    elif config.instance_type:
        chosen["instance_type"] = config.instance_type
    else:
        raise ConfigError(
            "no compute for this step: set compute (a cluster), or instance_type or gpu "
            "(serverless)",
            field="compute",
        )
    tier = "Spot" if spot else config.job_tier
    if tier:
        chosen["job_tier"] = tier
    return chosen


def gpus_per_node(config: AzureMLStepOperatorConfig, info: StepRunInfo) -> int:
    """GPUs of each node: the step's or the config's GPU request, else the VM size's."""
    gpu = info.resources.gpu or config.gpu
    if gpu:
        return parse_gpu(gpu)[1]
    name = placement(config, info).get("instance_type")
    return next((size.gpu_count for size in VM_SIZES if size.name == name), 0)


def iso_duration(seconds: int) -> str:
    """Whole seconds as the ISO 8601 duration the client sends (``PT1M31S``, ``P1DT2H``)."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, rest = divmod(rest, 60)
    time = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (rest, "S")) if n)
    return "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")


def duration_seconds(duration: str) -> int:
    """An :func:`iso_duration` back in whole seconds (ValueError for any other text)."""
    match = _DURATION.match(duration)
    if match is None or duration in ("P", "PT"):
        raise ValueError(f"not a duration in whole seconds: {duration!r}")
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def build_request(
    config: AzureMLStepOperatorConfig,
    info: StepRunInfo,
    entrypoint_command: list[str],
    environment: dict[str, str],
) -> dict[str, Any]:
    """The job's create request: ``{"name", "properties", ["environment"]}`` (module doc)."""
    chosen = placement(config, info)
    command_line = list(entrypoint_command)
    environment = dict(environment)
    properties: dict[str, Any] = {
        "jobType": "Command",
        "displayName": f"{info.step} ({info.run})",
        "experimentName": config.experiment_name,
    }
    request: dict[str, Any] = {"name": job_name(info), "properties": properties}
    image = info.image or config.image
    if image:
        request["environment"] = {"image": image}
    else:
        properties["environmentId"] = config.environment_name
    if environment.get(CHECKPOINT_ENV) == CHECKPOINT_PLACEHOLDER:
        # Environment variables are not substituted, the command is: set it there.
        del environment[CHECKPOINT_ENV]
        command_line = ["env", f"{CHECKPOINT_ENV}={CHECKPOINT_PLACEHOLDER}", *command_line]
        properties["outputs"] = {
            CHECKPOINT_OUTPUT: {
                "jobOutputType": "uri_folder",
                "uri": checkpoint_uri(config, info),
                "mode": "ReadWriteMount",
            }
        }
    properties["command"] = shlex.join(command_line)
    properties["environmentVariables"] = environment
    if "compute" in chosen:
        properties["computeId"] = f"{workspace_id(config)}/computes/{chosen['compute']}"
    resources: dict[str, Any] = {"instanceCount": chosen["instance_count"]}
    if "instance_type" in chosen:
        resources["instanceType"] = chosen["instance_type"]
    properties["resources"] = resources
    if "job_tier" in chosen:
        properties["queueSettings"] = {"jobTier": chosen["job_tier"]}
    max_runtime = info.max_runtime or config.max_runtime
    if max_runtime:
        timeout = iso_duration(math.ceil(max_runtime))
        properties["limits"] = {"jobLimitsType": "Command", "timeout": timeout}
    if config.identity in IDENTITY_TYPES:
        properties["identity"] = {"identityType": IDENTITY_TYPES[config.identity]}
    processes = info.resources.processes_for(gpus_per_node(config, info))
    if info.resources.nodes * processes > 1:
        # Azure ML starts the processes of every node and sets the torch variables in each
        # (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, ...): the entrypoint then runs the step
        # once per process, as on every flavor.
        properties["distribution"] = {
            "distributionType": "PyTorch",
            "processCountPerInstance": processes,
        }
    properties["tags"] = {
        **config.tags,
        **info.tags,
        ATTEMPT_TAG: info.attempt_key,
        "steplift.pipeline": info.pipeline,
        "steplift.run": info.run,
        "steplift.step": info.step,
    }
    return request
