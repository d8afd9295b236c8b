"""The JSON wire format of Vertex AI's REST API, both ways.

What the real client sends and expects (measured): camelCase keys, enums as numbers when the
query says ``enum-encoding=int`` (names otherwise; both are accepted on input), int64 fields as
strings, durations as ``"3600s"``, fields with default values omitted. Errors are
``{"error": {"code": <http>, "message": ..., "status": <rpc code name>}}``.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from typing import Any

from steplift_vertex.resources import ACCELERATOR_ENUM
from steplift_vertex.status import STATE_NAMES

STATE_NUMBERS = {name: number for number, name in STATE_NAMES.items()}
STRATEGY_NUMBERS = {
    "STRATEGY_UNSPECIFIED": 0,
    "ON_DEMAND": 1,
    "LOW_COST": 2,
    "STANDARD": 3,
    "SPOT": 4,
    "FLEX_START": 6,
}
ACCELERATOR_NUMBERS = {"ACCELERATOR_TYPE_UNSPECIFIED": 0, **ACCELERATOR_ENUM}

RPC_CODES = {
    "OK": 0,
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "OUT_OF_RANGE": 11,
    "UNIMPLEMENTED": 12,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "DATA_LOSS": 15,
    "UNAUTHENTICATED": 16,
}
HTTP_FOR_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "PERMISSION_DENIED": 403,
    "UNAUTHENTICATED": 401,
    "RESOURCE_EXHAUSTED": 429,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNKNOWN": 500,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}

_DURATION = re.compile(r"^([0-9]+)(?:\.([0-9]{1,9}))?s$")


class ApiError(Exception):
    """An error the emulated service answers with (Google's JSON error shape)."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def http_code(self) -> int:
        """The HTTP status of this error."""
        return HTTP_FOR_STATUS.get(self.status, 500)

    def body(self) -> dict[str, Any]:
        """``{"error": {...}}`` as Google APIs send it."""
        return {"error": {"code": self.http_code, "message": self.message, "status": self.status}}


def now_rfc3339(moment: datetime | None = None) -> str:
    """An RFC 3339 UTC timestamp with microseconds, as Google APIs write them."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (nanoseconds are cut to microseconds)."""
    match = re.match(r"^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", text)
    if not match:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    fraction = (match.group(2) or "0")[:6].ljust(6, "0")
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    return datetime.fromisoformat(f"{match.group(1)}.{fraction}{zone}")


def parse_duration(text: Any, field: str) -> float:
    """``"3600s"`` / ``"1.5s"`` -> seconds; ApiError naming ``field`` otherwise."""
    match = _DURATION.match(str(text))
    if not match:
        raise ApiError("INVALID_ARGUMENT", f"Invalid value at '{field}' ({text!r}): not a duration")
    return int(match.group(1)) + float(f"0.{match.group(2) or 0}")


def _enum_in(value: Any, numbers: dict[str, int], field: str) -> str:
    if isinstance(value, bool):
        raise ApiError("INVALID_ARGUMENT", f"Invalid value at '{field}' ({value!r})")
    if isinstance(value, int):
        for name, number in numbers.items():
            if number == value:
                return name
        raise ApiError("INVALID_ARGUMENT", f"Invalid value at '{field}' ({value})")
    if isinstance(value, str) and value in numbers:
        return value
    raise ApiError("INVALID_ARGUMENT", f"Invalid value at '{field}' ({value!r})")


def _int_in(value: Any, field: str) -> int:
    try:
        if isinstance(value, bool | float):
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise ApiError("INVALID_ARGUMENT", f"Invalid value at '{field}' ({value!r})") from None


def job_from_wire(body: dict[str, Any]) -> dict[str, Any]:
    """A CustomJob from a request body, with enums as names and integers as ints."""
    job = copy.deepcopy(body)
    spec = job.get("jobSpec")
    if not isinstance(spec, dict):
        return job
    pools = spec.get("workerPoolSpecs", [])
    if isinstance(pools, list):
        for index, pool in enumerate(pools):
            if not isinstance(pool, dict):
                continue
            where = f"custom_job.job_spec.worker_pool_specs[{index}]"
            if "replicaCount" in pool:
                pool["replicaCount"] = _int_in(pool["replicaCount"], f"{where}.replica_count")
            machine = pool.get("machineSpec")
            if isinstance(machine, dict):
                if "acceleratorType" in machine:
                    machine["acceleratorType"] = _enum_in(
                        machine["acceleratorType"],
                        ACCELERATOR_NUMBERS,
                        f"{where}.machine_spec.accelerator_type",
                    )
                if "acceleratorCount" in machine:
                    machine["acceleratorCount"] = _int_in(
                        machine["acceleratorCount"], f"{where}.machine_spec.accelerator_count"
                    )
            disk = pool.get("diskSpec")
            if isinstance(disk, dict) and "bootDiskSizeGb" in disk:
                disk["bootDiskSizeGb"] = _int_in(
                    disk["bootDiskSizeGb"], f"{where}.disk_spec.boot_disk_size_gb"
                )
    scheduling = spec.get("scheduling")
    if isinstance(scheduling, dict) and "strategy" in scheduling:
        scheduling["strategy"] = _enum_in(
            scheduling["strategy"], STRATEGY_NUMBERS, "custom_job.job_spec.scheduling.strategy"
        )
    return job


def job_to_wire(job: dict[str, Any], enums_as_ints: bool) -> dict[str, Any]:
    """A stored CustomJob as the API answers it (int64 as strings, defaults omitted)."""
    out = copy.deepcopy(job)
    if enums_as_ints:
        out["state"] = STATE_NUMBERS.get(out.get("state", ""), 0)
    spec = out.get("jobSpec", {})
    for pool in spec.get("workerPoolSpecs", []):
        if "replicaCount" in pool:
            pool["replicaCount"] = str(pool["replicaCount"])
        machine = pool.get("machineSpec", {})
        if enums_as_ints and "acceleratorType" in machine:
            machine["acceleratorType"] = ACCELERATOR_NUMBERS[machine["acceleratorType"]]
    scheduling = spec.get("scheduling", {})
    if enums_as_ints and "strategy" in scheduling:
        scheduling["strategy"] = STRATEGY_NUMBERS[scheduling["strategy"]]
    cleaned: dict[str, Any] = _omit_defaults(out)
    return cleaned


def _omit_defaults(value: Any) -> Any:  # recursive over JSON values
    if isinstance(value, dict):
        cleaned = {key: _omit_defaults(item) for key, item in value.items()}
        return {
            key: item
            for key, item in cleaned.items()
            if item not in (None, "", 0, False, [], {}) or key == "state"
        }
    if isinstance(value, list):
        return [_omit_defaults(item) for item in value]
    return value
