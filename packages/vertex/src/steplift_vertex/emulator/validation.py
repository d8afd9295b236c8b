"""What Vertex AI checks when a CustomJob is created, refused the way it refuses.

The service lists every problem in one INVALID_ARGUMENT message of the form
``List of found errors: 1.Field: <path>; Message: <why>``.
"""

from __future__ import annotations

from typing import Any

from steplift_vertex.config import MAX_DISPLAY_NAME, check_labels
from steplift_vertex.emulator.wire import ApiError, parse_duration
from steplift_vertex.resources import check_machine

MAX_WORKER_POOLS = 4
MAX_REPLICAS = 1000
MIN_BOOT_DISK_GB = 100
MAX_BOOT_DISK_GB = 64000
BOOT_DISK_TYPES = ("pd-ssd", "pd-standard", "hyperdisk-balanced")


def validate_custom_job(job: dict[str, Any]) -> None:
    """Raise ApiError(INVALID_ARGUMENT) listing every problem of a CustomJob to create."""
    problems: list[tuple[str, str]] = []

    def problem(field: str, message: str) -> None:
        problems.append((field, message))

    for server_field in ("name", "state", "createTime", "startTime", "endTime", "error"):
        if server_field in job:
            problem(f"custom_job.{server_field}", "is output only and must not be set")
    display_name = job.get("displayName")
    if not isinstance(display_name, str) or not display_name:
        problem("custom_job.display_name", "Required field is not set.")
    elif len(display_name) > MAX_DISPLAY_NAME:
        problem("custom_job.display_name", f"must be at most {MAX_DISPLAY_NAME} characters")
    labels = job.get("labels", {})
    try:
        if not isinstance(labels, dict):
            raise ValueError("must be a map of strings")
        check_labels(labels, reserved_allowed=True)
    except ValueError as error:
        problem("custom_job.labels", str(error))
    spec = job.get("jobSpec")
    if not isinstance(spec, dict):
        problem("custom_job.job_spec", "Required field is not set.")
    else:
        _check_spec(spec, problem)
    if problems:
        listed = " ".join(
            f"{number}.Field: {field}; Message: {message}"
            for number, (field, message) in enumerate(problems, start=1)
        )
        raise ApiError("INVALID_ARGUMENT", f"List of found errors:\t{listed}")


def _check_spec(spec: dict[str, Any], problem: Any) -> None:
    pools = spec.get("workerPoolSpecs")
    if not isinstance(pools, list) or not pools:
        problem("custom_job.job_spec.worker_pool_specs", "Required field is not set.")
        pools = []
    if len(pools) > MAX_WORKER_POOLS:
        problem("custom_job.job_spec.worker_pool_specs", f"at most {MAX_WORKER_POOLS} pools")
    for index, pool in enumerate(pools):
        where = f"custom_job.job_spec.worker_pool_specs[{index}]"
        if not isinstance(pool, dict) or not pool:
            if index == 0:
                problem(where, "the first (chief) worker pool must be set")
            continue
        replicas = pool.get("replicaCount", 0)
        if index == 0 and replicas != 1:
            problem(f"{where}.replica_count", "the chief worker pool must have exactly 1 replica")
        elif not 1 <= replicas <= MAX_REPLICAS:
            problem(f"{where}.replica_count", f"must be between 1 and {MAX_REPLICAS}")
        machine = pool.get("machineSpec", {})
        machine_type = machine.get("machineType")
        if not machine_type:
            problem(f"{where}.machine_spec.machine_type", "Required field is not set.")
        else:
            accelerator = machine.get("acceleratorType")
            count = machine.get("acceleratorCount")
            if accelerator is not None and not count:
                problem(f"{where}.machine_spec.accelerator_count", "must be positive")
            try:
                check_machine(machine_type, accelerator, count)
            except ValueError as error:
                problem(f"{where}.machine_spec", str(error))
        container = pool.get("containerSpec")
        if "pythonPackageSpec" in pool:
            problem(f"{where}.python_package_spec", "is not supported by this emulator")
        elif not isinstance(container, dict) or not container.get("imageUri"):
            problem(f"{where}.container_spec.image_uri", "Required field is not set.")
        else:
            for position, variable in enumerate(container.get("env", [])):
                if not isinstance(variable, dict) or not variable.get("name"):
                    problem(f"{where}.container_spec.env[{position}].name", "must be set")
        disk = pool.get("diskSpec", {})
        if "bootDiskSizeGb" in disk and not (
            MIN_BOOT_DISK_GB <= disk["bootDiskSizeGb"] <= MAX_BOOT_DISK_GB
        ):
            problem(
                f"{where}.disk_spec.boot_disk_size_gb",
                f"must be between {MIN_BOOT_DISK_GB} and {MAX_BOOT_DISK_GB}",
            )
        if disk.get("bootDiskType", "pd-ssd") not in BOOT_DISK_TYPES:
            problem(f"{where}.disk_spec.boot_disk_type", "unknown boot disk type")
    scheduling = spec.get("scheduling", {})
    if "timeout" in scheduling:
        try:
            if parse_duration(scheduling["timeout"], "timeout") <= 0:
                problem("custom_job.job_spec.scheduling.timeout", "must be positive")
        except ApiError:
            problem("custom_job.job_spec.scheduling.timeout", "is not a duration")
    output = spec.get("baseOutputDirectory", {}).get("outputUriPrefix")
    if output is not None and not str(output).startswith("gs://"):
        problem(
            "custom_job.job_spec.base_output_directory.output_uri_prefix", "must be a gs:// URI"
        )
