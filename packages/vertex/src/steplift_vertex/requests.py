"""The CustomJob a step attempt becomes, as plain data: no SDK import, no call.

:func:`build_request` is the body of ``customJobs.create`` as JSON-able data with the API's
field names (``display_name``, ``job_spec.worker_pool_specs``...), enums by name and the
timeout as a duration string (``"3600s"``); the operator turns it into the SDK's
``CustomJob``. Every check Vertex AI would make of the step (machine, disk, tags, replicas)
is made here first, as a :class:`~steplift.errors.ConfigError` before any call.

A step of several nodes is one job of two worker pools: the chief (``worker_pool_specs[0]``,
always one replica, as Vertex requires) and ``nodes - 1`` workers in ``worker_pool_specs[1]``
with the same machine, disk and container.

Vertex assigns job ids itself, so the job carries the ``steplift-key`` label derived from the
step attempt; ``find_job`` lists by it.
"""

from __future__ import annotations

import copy
import hashlib
import math
import re
from typing import Any

from steplift.errors import ConfigError
from steplift.models import StepRunInfo
from steplift.store import join_uri
from steplift_vertex.config import (
    MAX_DISPLAY_NAME,
    RESERVED_LABEL_PREFIX,
    VertexStepOperatorConfig,
    check_labels,
)
from steplift_vertex.resources import step_machine

KEY_LABEL = f"{RESERVED_LABEL_PREFIX}key"
"""The label that identifies a step attempt's job (a digest: label values are short)."""

MIN_BOOT_DISK_GB = 100

_LABEL_UNSAFE = re.compile(r"[^a-z0-9_-]+")


def attempt_label(info: StepRunInfo) -> str:
    """The ``steplift-key`` label value of a step attempt (its key and artifact folder)."""
    return hashlib.sha256(f"{info.attempt_key}\n{info.artifact_uri}".encode()).hexdigest()[:40]


def _label_value(text: str) -> str:
    return _LABEL_UNSAFE.sub("-", text.lower()).strip("-")[:63]


def boot_disk_gb(config: VertexStepOperatorConfig, info: StepRunInfo) -> int | None:
    """The boot disk size of every replica (None: Vertex's default of 100 GB)."""
    disk_gb = info.resources.disk_gb or config.boot_disk_size_gb
    if disk_gb is not None and disk_gb < MIN_BOOT_DISK_GB:
        raise ConfigError(
            f"Vertex AI boot disks are at least {MIN_BOOT_DISK_GB} GB",
            field="resources.disk_gb",
            value=disk_gb,
            has_value=True,
        )
    return disk_gb


def display_name(config: VertexStepOperatorConfig, info: StepRunInfo) -> str:
    """``<prefix>-<step attempt name>``, at most 128 characters."""
    prefix = config.display_name_prefix
    room = MAX_DISPLAY_NAME - len(prefix) - 1
    return f"{prefix}-{info.job_name(max_length=room, allowed='A-Za-z0-9_.-')}"


def job_labels(config: VertexStepOperatorConfig, info: StepRunInfo) -> dict[str, str]:
    """The config's labels, the step's tags and steplift's own labels."""
    try:
        tags = check_labels(dict(info.tags))
    except ValueError as error:
        raise ConfigError(str(error), field="tags", value=info.tags, has_value=True) from None
    return {
        **config.labels,
        **tags,
        KEY_LABEL: attempt_label(info),
        f"{RESERVED_LABEL_PREFIX}pipeline": _label_value(info.pipeline),
        f"{RESERVED_LABEL_PREFIX}run": _label_value(info.run),
        f"{RESERVED_LABEL_PREFIX}step": _label_value(info.step),
        f"{RESERVED_LABEL_PREFIX}attempt": str(info.attempt),
    }


def check_request(config: VertexStepOperatorConfig, info: StepRunInfo) -> None:
    """Refuse a step Vertex AI would refuse or could not run (ConfigError, no call).

    Its machine (GPU type and count, CPU, memory), boot disk and tags are checked as the
    create call would check them. ``replica_count`` above 1 must equal the step's nodes:
    every replica runs the step's entrypoint, which refuses to run on a cluster of another
    size than the step asked for, so the job would fail on every machine it paid for.
    """
    step_machine(config, info)
    boot_disk_gb(config, info)
    job_labels(config, info)
    replicas = config.replica_count
    if replicas > 1 and replicas != info.resources.nodes:
        raise ConfigError(
            f"replica_count = {replicas} would run the step on {replicas} machines, but it "
            f"asks for {info.resources.nodes} node(s); ask for nodes={replicas} on the step "
            "(--nodes on the CLI) instead",
            field="replica_count",
            value=replicas,
            has_value=True,
        )


def build_request(
    config: VertexStepOperatorConfig,
    info: StepRunInfo,
    entrypoint_command: list[str],
    environment: dict[str, str],
) -> dict[str, Any]:
    """The CustomJob to create for a step attempt (ConfigError before any call)."""
    check_request(config, info)
    machine = step_machine(config, info)
    disk_gb = boot_disk_gb(config, info)
    replicas = info.resources.nodes
    pool: dict[str, Any] = {
        "machine_spec": machine.as_fields(),
        "replica_count": 1,
        "container_spec": {
            "image_uri": info.image or config.image,
            "command": list(entrypoint_command),
            "env": [{"name": key, "value": value} for key, value in environment.items()],
        },
    }
    if disk_gb is not None or config.boot_disk_type != "pd-ssd":
        pool["disk_spec"] = {"boot_disk_type": config.boot_disk_type}
        if disk_gb is not None:
            pool["disk_spec"]["boot_disk_size_gb"] = disk_gb
    # The first pool is the chief and always has one replica (Vertex refuses any other
    # count); the other nodes are the second pool's replicas, on the same machines.
    pools = [pool]
    if replicas > 1:
        pools.append({**copy.deepcopy(pool), "replica_count": replicas - 1})
    scheduling: dict[str, Any] = {}
    max_runtime = info.max_runtime or config.max_runtime
    if max_runtime:
        scheduling["timeout"] = f"{math.ceil(max_runtime)}s"
    if info.resources.use_spot(config.spot):
        scheduling["strategy"] = "SPOT"
    if config.restart_job_on_worker_restart:
        scheduling["restart_job_on_worker_restart"] = True
    spec: dict[str, Any] = {
        "worker_pool_specs": pools,
        "base_output_directory": {
            "output_uri_prefix": join_uri(config.staging_bucket, "vertex-output", info.job_name())
        },
    }
    if scheduling:
        spec["scheduling"] = scheduling
    for name in ("service_account", "network", "persistent_resource_id"):
        value = getattr(config, name)
        if value:
            spec[name] = value
    return {
        "display_name": display_name(config, info),
        "labels": job_labels(config, info),
        "job_spec": spec,
    }
