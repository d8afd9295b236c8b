"""The REST surface of the emulated Vertex AI: routes, handlers and the JSON wire format.

Serves customJobs (create/get/list/cancel/delete under ``/v1`` and ``/v1beta1``), Cloud
Logging ``entries:list`` and the Secret Manager routes, recording each call and injecting the
faults the emulator is set to.

The wire format is what the real client sends and expects (measured): camelCase keys, enums
as numbers when the query says ``enum-encoding=int`` (names otherwise; both are accepted on
input), int64 fields as strings, durations as ``"3600s"``, fields with default values omitted.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import urllib.parse
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from steplift.emulation.server import client_went_away
from steplift.testing.emulation import FaultKind
from steplift_vertex.emulator.errors import ApiError, not_found, status_line, unavailable
from steplift_vertex.emulator.secrets import is_secret_path, serve_secret_call
from steplift_vertex.emulator.validation import refuse_unknown_fields
from steplift_vertex.resources import ACCELERATOR_ENUM
from steplift_vertex.status import STATE_NAMES

if TYPE_CHECKING:
    from steplift_vertex.emulator.server import VertexEmulator

logger = logging.getLogger(__name__)

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


_COLLECTION = re.compile(r"^/(v1|v1beta1)/projects/([^/]+)/locations/([^/]+)/customJobs$")
_RESOURCE = re.compile(
    r"^/(v1|v1beta1)/(projects/[^/]+/locations/[^/]+/customJobs/[^/:]+)(:cancel)?$"
)
_OPERATIONS = {
    ("POST", "collection"): "CreateCustomJob",
    ("GET", "collection"): "ListCustomJobs",
    ("GET", "resource"): "GetCustomJob",
    ("DELETE", "resource"): "DeleteCustomJob",
    ("POST", "cancel"): "CancelCustomJob",
}


class VertexService:
    """The WSGI app of the Vertex AI, Cloud Logging and Secret Manager routes of ``emulator``."""

    def __init__(self, emulator: VertexEmulator) -> None:
        self.emulator = emulator

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        # The REST client asks with `$alt=json;enum-encoding=int` (decoded by parse_qs).
        enums_as_ints = any(
            "enum-encoding=int" in value for values in query.values() for value in values
        )
        try:
            body = _read_json(environ)
            status, answer = self._dispatch(method, path, query, body, enums_as_ints)
        except ApiError as error:
            status, answer = error.http_code, error.body()
        except Exception as error:  # an emulator bug: answer like the service, keep serving
            if client_went_away(error):
                logger.debug("client went away during %s %s: %r", method, path, error)
                raise  # no one to answer (wsgiref passes over a client gone)
            logger.exception("vertex emulator failed on %s %s", method, path)
            failure = ApiError("INTERNAL", f"emulator error: {error}")
            status, answer = failure.http_code, failure.body()
        payload = json.dumps(answer).encode()
        start_response(
            status_line(status),
            [
                ("Content-Type", "application/json; charset=UTF-8"),
                ("Content-Length", str(len(payload))),
            ],
        )
        return [payload]

    def _dispatch(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        body: dict[str, Any] | None,
        enums_as_ints: bool,
    ) -> tuple[int, Any]:
        emulator = self.emulator
        params = {
            "method": method,
            "path": path,
            "query": {key: values[-1] for key, values in query.items()},
            "body": body,
        }
        if is_secret_path(path):
            return serve_secret_call(emulator.secrets, emulator, method, path, query, body)
        if path == "/v2/entries:list" and method == "POST":
            emulator.record("logging", "ListLogEntries", params)
            return 200, emulator.logbook.list(body or {})
        collection = _COLLECTION.match(path)
        resource = _RESOURCE.match(path)
        if collection:
            kind = "collection"
        elif resource:
            kind = "cancel" if resource.group(3) else "resource"
        else:
            raise not_found(path)
        operation = _OPERATIONS.get((method, kind))
        if operation is None:
            raise ApiError("UNIMPLEMENTED", f"{method} is not supported on {path}")
        emulator.record(emulator.service_name, operation, params)
        _raise_fault(emulator.decide_fault(operation))
        if collection:
            project, location = collection.group(2), collection.group(3)
            if method == "POST":
                version = collection.group(1)
                return 200, self._create(project, location, body, enums_as_ints, version)
            return 200, self._list(project, location, query, enums_as_ints)
        assert resource is not None
        name = resource.group(2)
        if kind == "cancel":
            emulator.jobs.cancel(name)
            return 200, {}
        if method == "DELETE":
            emulator.jobs.delete(name)
            return 200, {
                "name": f"{name}/operations/{abs(hash(name)) % 10**18}",
                "done": True,
                "response": {"@type": "type.googleapis.com/google.protobuf.Empty"},
            }
        return 200, job_to_wire(emulator.jobs.get(name).resource, enums_as_ints)

    def _create(
        self,
        project: str,
        location: str,
        body: dict[str, Any] | None,
        enums_as_ints: bool,
        version: str = "v1",
    ) -> dict[str, Any]:
        if not body:
            raise ApiError(
                "INVALID_ARGUMENT",
                "List of found errors:\t1.Field: custom_job; Message: Required field is not set.",
            )
        body = refuse_unknown_fields(body, version)
        if self.emulator.faults.refuse_create == "quota":
            raise ApiError(
                "RESOURCE_EXHAUSTED",
                "The following quota metrics exceed quota limits: "
                "aiplatform.googleapis.com/custom_model_training_gpus",
            )
        job = self.emulator.jobs.create(project, location, job_from_wire(body))
        return job_to_wire(job.resource, enums_as_ints)

    def _list(
        self, project: str, location: str, query: dict[str, list[str]], enums_as_ints: bool
    ) -> dict[str, Any]:
        def one(name: str) -> str:
            return query.get(name, [""])[-1]

        try:
            size = int(one("pageSize") or 0)
        except ValueError:
            raise ApiError("INVALID_ARGUMENT", f"Invalid pageSize {one('pageSize')!r}") from None
        jobs, token = self.emulator.jobs.list(
            f"projects/{project}/locations/{location}", one("filter"), size, one("pageToken")
        )
        answer: dict[str, Any] = {}
        if jobs:
            answer["customJobs"] = [job_to_wire(job.resource, enums_as_ints) for job in jobs]
        if token:
            answer["nextPageToken"] = token
        return answer


def _raise_fault(fault: FaultKind | None) -> None:
    if fault == "throttle":
        raise ApiError(
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_"
            "base_model: rate limit exceeded, retry later.",
        )
    if fault == "error":
        raise unavailable()


def _read_json(environ: dict[str, Any]) -> dict[str, Any] | None:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if not length:
        return None
    raw = environ["wsgi.input"].read(length)
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ApiError("INVALID_ARGUMENT", f"Invalid JSON payload received. {error}") from None
    if not isinstance(data, dict):
        raise ApiError("INVALID_ARGUMENT", "Invalid JSON payload received: not an object")
    return data


# -- the wire format ----------------------------------------------------------------------


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
