"""What Vertex AI accepts in a request, refused the way it refuses.

- a CustomJob to create: a field its API version's message lacks is refused as Google's
  JSON decoder refuses it (``Unknown name "..." at '...': Cannot find field.``), not echoed;
  then every problem listed in one INVALID_ARGUMENT message of the form
  ``List of found errors: 1.Field: <path>; Message: <why>``;
- the filter expressions of ``customJobs.list`` and ``entries:list`` (the common subset)::

      labels.team="ml" AND state="JOB_STATE_RUNNING"
      resource.type="ml_job" AND resource.labels.job_id="123" AND timestamp>="2026-..."

  Comparisons ``= != < <= > >= :`` (``:`` is "has": ``labels.k:*`` or a prefix with ``*``),
  joined by ``AND`` (binding tighter) and ``OR``; ``NOT`` before a comparison. Values are
  quoted strings or bare words. Anything else is refused as INVALID_ARGUMENT;
- page tokens, durations (``"3600s"``) and RFC 3339 timestamps, which the service also writes.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from steplift_vertex.config import MAX_DISPLAY_NAME, check_labels
from steplift_vertex.emulator.errors import ApiError
from steplift_vertex.resources import BUILT_IN_GPU_MACHINES, check_machine

MAX_WORKER_POOLS = 4
MAX_REPLICAS = 1000
MIN_BOOT_DISK_GB = 100
MAX_BOOT_DISK_GB = 64000
BOOT_DISK_TYPES = ("pd-ssd", "pd-standard", "hyperdisk-balanced")

_CPU_MACHINE_SIZES: dict[str, tuple[int, ...]] = {
    "n1-standard": (1, 2, 4, 8, 16, 32, 64, 96),
    "n1-highmem": (2, 4, 8, 16, 32, 64, 96),
    "n1-highcpu": (2, 4, 8, 16, 32, 64, 96),
    "n2-standard": (2, 4, 8, 16, 32, 48, 64, 80, 96, 128),
    "n2-highmem": (2, 4, 8, 16, 32, 48, 64, 80, 96, 128),
    "n2-highcpu": (2, 4, 8, 16, 32, 48, 64, 80, 96),
    "n2d-standard": (2, 4, 8, 16, 32, 48, 64, 80, 96, 128, 224),
    "n2d-highmem": (2, 4, 8, 16, 32, 48, 64, 80, 96),
    "n2d-highcpu": (2, 4, 8, 16, 32, 48, 64, 80, 96, 128, 224),
    "e2-standard": (2, 4, 8, 16, 32),
    "e2-highmem": (2, 4, 8, 16),
    "e2-highcpu": (2, 4, 8, 16, 32),
    "c2-standard": (4, 8, 16, 30, 60),
    "c2d-standard": (2, 4, 8, 16, 32, 56, 112),
    "c2d-highmem": (2, 4, 8, 16, 32, 56, 112),
    "c2d-highcpu": (2, 4, 8, 16, 32, 56, 112),
    "m1-ultramem": (40, 80, 160),
    "m1-megamem": (96,),
}
MACHINE_TYPES = frozenset(
    [f"{family}-{size}" for family, sizes in _CPU_MACHINE_SIZES.items() for size in sizes]
    + list(BUILT_IN_GPU_MACHINES)
)
"""Every machine type a worker pool may name: the predefined sizes of the CPU families Vertex
AI custom training takes (Compute Engine's machine family pages: general-purpose N1, N2, N2D,
E2; compute-optimized C2, C2D; memory-optimized M1) and the GPU machines of the accelerator
families (G2 with L4; A2 high/mega/ultra with A100; A3 high/mega/ultra with H100/H200, as
listed in Vertex AI's "Configure compute resources for custom training" and Compute Engine's
"GPU machine types"; see ``steplift_vertex.resources``). A size a family lacks
(``n1-standard-3``, ``a2-highgpu-3g``) is refused, as the service refuses it."""

_DURATION = re.compile(r"^([0-9]+)(?:\.([0-9]{1,9}))?s$")


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


@functools.cache
def _custom_job_message(version: str) -> Any:
    """The descriptor of API ``version``'s CustomJob message, from the protos that ship with
    google-cloud-aiplatform (imported on the first create: about a second)."""
    if version == "v1beta1":
        from google.cloud.aiplatform_v1beta1.types import custom_job as v1beta1

        return v1beta1.CustomJob.pb().DESCRIPTOR
    from google.cloud.aiplatform_v1.types import custom_job as v1

    return v1.CustomJob.pb().DESCRIPTOR


def refuse_unknown_fields(job: dict[str, Any], version: str) -> dict[str, Any]:
    """The body of a create with every field by its JSON name (the REST front end takes the
    proto name too); INVALID_ARGUMENT, worded as Google's, for a field CustomJob lacks."""
    found: list[str] = []
    named: dict[str, Any] = _json_names(job, _custom_job_message(version), "custom_job", found)
    if found:
        raise ApiError("INVALID_ARGUMENT", "\n".join(found))
    return named


def _json_names(value: Any, message: Any, path: str, found: list[str]) -> Any:
    if not isinstance(value, dict):
        return value
    fields = {field.json_name: field for field in message.fields}
    fields.update((field.name, field) for field in message.fields)
    named: dict[str, Any] = {}
    for key, item in value.items():
        field = fields.get(key)
        if field is None:
            found.append(
                f"Invalid JSON payload received. Unknown name \"{key}\" at '{path}': "
                "Cannot find field."
            )
            continue
        named[field.json_name] = item
        inner = field.message_type
        # Well-known types (Duration, Timestamp, Struct...) have JSON forms of their own.
        if inner is None or inner.full_name.startswith("google.protobuf."):
            continue
        where = f"{path}.{field.name}"
        if inner.GetOptions().map_entry:
            entry = inner.fields_by_name["value"].message_type
            if entry is not None and isinstance(item, dict):
                named[field.json_name] = {
                    name: _json_names(element, entry, f"{where}[{name}]", found)
                    for name, element in item.items()
                }
        elif field.is_repeated:
            if isinstance(item, list):
                named[field.json_name] = [
                    _json_names(element, inner, f"{where}[{index}]", found)
                    for index, element in enumerate(item)
                ]
        else:
            named[field.json_name] = _json_names(item, inner, where, found)
    return named


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
        elif not isinstance(machine_type, str) or machine_type not in MACHINE_TYPES:
            problem(
                f"{where}.machine_spec.machine_type",
                f'Machine type "{machine_type}" is not supported.',
            )
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


# -- values -------------------------------------------------------------------------------


def now_rfc3339(moment: datetime | None = None) -> str:
    """An RFC 3339 UTC timestamp with microseconds, as Google APIs write them."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (nanoseconds are cut to microseconds).

    Cloud Logging's filters also take an offset without its colon: google-cloud-logging's
    default filter is written with ``strftime("%Y-%m-%dT%H:%M:%S.%f%z")``, i.e. ``+0000``.
    """
    match = re.match(r"^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:?\d\d)$", text.strip())
    if not match:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    fraction = (match.group(2) or "0")[:6].ljust(6, "0")
    offset = match.group(3)
    zone = "+00:00" if offset in ("Z", "z") else f"{offset[:3]}:{offset[-2:]}"
    return datetime.fromisoformat(f"{match.group(1)}.{fraction}{zone}")


def parse_duration(text: Any, field: str) -> float:
    """``"3600s"`` / ``"1.5s"`` -> seconds; ApiError naming ``field`` otherwise."""
    match = _DURATION.match(str(text))
    if not match:
        raise ApiError("INVALID_ARGUMENT", f"Invalid value at '{field}' ({text!r}): not a duration")
    return int(match.group(1)) + float(f"0.{match.group(2) or 0}")


# -- page tokens --------------------------------------------------------------------------


def encode_token(offset: int) -> str:
    """An opaque page token for a list offset."""
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def decode_token(token: str) -> int:
    """The offset of a page token; INVALID_ARGUMENT for a token we did not make."""
    if not token:
        return 0
    try:
        offset = int(json.loads(base64.urlsafe_b64decode(token.encode()))["o"])
    except (ValueError, KeyError, TypeError):
        raise ApiError("INVALID_ARGUMENT", f"Invalid page token: {token!r}") from None
    if offset < 0:
        raise ApiError("INVALID_ARGUMENT", f"Invalid page token: {token!r}")
    return offset


# -- filters ------------------------------------------------------------------------------

_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<op><=|>=|!=|=|<|>|:)|(?P<paren>[()])'
    r"|(?P<word>[A-Za-z0-9_.*@/+-]+))"
)


@dataclass(frozen=True)
class Comparison:
    """``field op value``; ``negated`` for a leading NOT."""

    field: str
    op: str
    value: str
    negated: bool = False


Clause = list[Comparison]
"""Comparisons that must all hold (AND)."""


def parse_filter(text: str) -> list[Clause]:
    """Parse into OR-ed clauses of AND-ed comparisons; ApiError for anything else."""
    tokens = _tokenize(text)
    clauses: list[Clause] = [[]]
    position = 0
    expect_comparison = True
    while position < len(tokens):
        kind, value = tokens[position]
        if not expect_comparison:
            if kind == "word" and value.upper() == "AND":
                expect_comparison, position = True, position + 1
                continue
            if kind == "word" and value.upper() == "OR":
                clauses.append([])
                expect_comparison, position = True, position + 1
                continue
            # Adjacent comparisons mean AND in Google's filter language.
            expect_comparison = True
            continue
        negated = False
        if kind == "word" and value.upper() == "NOT":
            negated, position = True, position + 1
        if position + 2 >= len(tokens):
            raise _invalid(text, "incomplete comparison")
        field_kind, field = tokens[position]
        op_kind, op = tokens[position + 1]
        value_kind, raw = tokens[position + 2]
        if field_kind != "word" or op_kind != "op" or value_kind not in ("word", "string"):
            raise _invalid(text, f"expected FIELD OP VALUE near {field!r}")
        if value_kind == "string":
            raw = bytes(raw[1:-1], "utf-8").decode("unicode_escape")
        clauses[-1].append(Comparison(field, op, raw, negated))
        position += 3
        expect_comparison = False
    if expect_comparison and tokens:
        raise _invalid(text, "dangling AND/OR")
    return [clause for clause in clauses if clause]


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise _invalid(text, f"unexpected character at {position}")
        kind = match.lastgroup or ""
        if kind == "paren":
            raise _invalid(text, "parentheses are not supported by this emulator")
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _invalid(text: str, why: str) -> ApiError:
    return ApiError("INVALID_ARGUMENT", f"Provided filter is not valid: {text!r} ({why})")


def matches(
    clauses: list[Clause], lookup: Callable[[str], Any], timestamps: frozenset[str] = frozenset()
) -> bool:
    """True if the item whose fields ``lookup`` answers passes the filter."""
    if not clauses:
        return True
    return any(
        all(_holds(comparison, lookup, timestamps) for comparison in clause) for clause in clauses
    )


def lookup_path(item: dict[str, Any], path: str) -> Any:
    """The value at a dotted path (None when absent)."""
    value: Any = item
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part.strip('"'))
    return value


def _holds(
    comparison: Comparison, lookup: Callable[[str], Any], timestamps: frozenset[str]
) -> bool:
    actual = lookup(comparison.field)
    wanted = comparison.value
    op = comparison.op
    if op == ":":
        if wanted == "*":
            result = actual is not None
        elif wanted.endswith("*"):
            result = actual is not None and str(actual).startswith(wanted[:-1])
        else:
            result = actual is not None and wanted in str(actual)
    elif actual is None:
        result = op == "!="
    else:
        left: Any = str(actual)
        right: Any = wanted
        if comparison.field in timestamps:
            try:
                left, right = parse_rfc3339(left), parse_rfc3339(right)
            except ValueError:
                raise ApiError("INVALID_ARGUMENT", f"invalid timestamp {wanted!r}") from None
        result = {
            "=": left == right,
            "!=": left != right,
            "<": left < right,
            "<=": left <= right,
            ">": left > right,
            ">=": left >= right,
        }[op]
    return not result if comparison.negated else result
