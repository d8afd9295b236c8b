"""The Azure ML API the real ``azure-ai-ml`` client calls: routes and handlers (WSGI).

Routes (``WS`` = ``/subscriptions/{sub}/resourceGroups/{rg}/providers/
Microsoft.MachineLearningServices/workspaces/{ws}``): managed-identity token, cloud metadata,
workspace GET (with its discovery URL), discovery, environment version PUT/GET, compute GET,
job PUT/GET, the jobs list (newest first; ``listViewType``, ``tag``, ``properties``,
``jobType`` filters; pages of ``list_page_size`` linked by ``nextLink`` with a ``$skip``
token), cancel (202 + Location, then the Location GET), run-history run and details
(``logFiles``, ``error``), log file GETs (with Range, :mod:`.logs`), and Key Vault's secret
GET (:mod:`.secrets`). Every request is recorded; control-plane calls need a bearer token and
take the emulator's throttle/error faults.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import parse_qs, quote, urlencode

from steplift.testing.emulation import StartResponse
from steplift_azureml.emulator import container, logs, secrets, validation
from steplift_azureml.emulator.errors import ApiError, invalid, status_line
from steplift_azureml.emulator.jobs import EmulatedJob

if TYPE_CHECKING:
    from steplift_azureml.emulator.server import AzureMLEmulator

SERVICE = "azureml"
Answer: TypeAlias = tuple[int, Any, list[tuple[str, str]]]

_WS = (
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
    r"Microsoft\.MachineLearningServices/workspaces/(?P<ws>[^/]+)"
)
_HISTORY = (
    r"/history/v1\.0" + _WS + r"(?:/experiments/[^/]+|/experimentids/[^/]+)?/runs/(?P<run>[^/]+)"
)
_CONTROL_PLANE = {
    "GetWorkspace",
    "Discovery",
    "CreateOrUpdateEnvironmentVersion",
    "GetEnvironmentVersion",
    "GetCompute",
    "CreateOrUpdateJob",
    "GetJob",
    "ListJobs",
    "CancelJob",
    "GetRun",
    "GetRunDetails",
}
ROUTES: tuple[tuple[str, str, str, str], ...] = (
    ("GET", r"/msi/token", "GetToken", "_token"),
    ("POST", r"/msi/token", "GetToken", "_token"),
    ("GET", r"/metadata/endpoints", "GetMetadata", "_metadata"),
    ("GET", r"/discovery", "Discovery", "_discovery"),
    ("GET", _WS, "GetWorkspace", "_get_workspace"),
    (
        "PUT",
        _WS + r"/environments/(?P<env>[^/]+)/versions/(?P<version>[^/]+)",
        "CreateOrUpdateEnvironmentVersion",
        "_put_environment",
    ),
    (
        "GET",
        _WS + r"/environments/(?P<env>[^/]+)/versions/(?P<version>[^/]+)",
        "GetEnvironmentVersion",
        "_get_environment",
    ),
    ("GET", _WS + r"/computes/(?P<compute>[^/]+)", "GetCompute", "_get_compute"),
    ("PUT", _WS + r"/jobs/(?P<job>[^/]+)", "CreateOrUpdateJob", "_put_job"),
    ("GET", _WS + r"/jobs/(?P<job>[^/]+)", "GetJob", "_get_job"),
    ("GET", _WS + r"/jobs", "ListJobs", "_list_jobs"),
    ("POST", _WS + r"/jobs/(?P<job>[^/]+)/cancel", "CancelJob", "_cancel_job"),
    ("GET", r"/_operations/cancel/(?P<job>[^/]+)", "GetCancelStatus", "_cancel_status"),
    ("GET", _HISTORY + r"/details", "GetRunDetails", "_run_details"),
    ("GET", _HISTORY, "GetRun", "_get_run"),
    ("GET", logs.ROUTE, "GetLogFile", "_log_file"),
    ("GET", secrets.ROUTE, "GetSecret", "_get_secret"),
)
"""(method, path pattern, operation recorded, handler) in the order they are tried."""


def __getattr__(name: str) -> Any:
    # The emulator class lived here; examples and benchmarks still import it from here.
    if name in ("AzureMLEmulator", "Compute"):
        from steplift_azureml.emulator import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class AzureMLService:
    """The WSGI app of one emulator: every route of the module doc, over its state."""

    def __init__(self, emulator: AzureMLEmulator) -> None:
        self.emulator = emulator

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        raw = environ["wsgi.input"].read(length) if length else b""
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = None
        operation, handler, match = self._route(method, path)
        self.emulator.record(
            SERVICE,
            operation,
            {
                "method": method,
                "path": path,
                "query": query,
                "body": body,
                "authorized": headers.get("authorization", "").startswith("Bearer "),
                "headers": sorted(headers),
            },
        )
        extra: list[tuple[str, str]] = []
        try:
            if handler is None:
                raise ApiError(404, "NotFound", f"the emulator has no route {method} {path}")
            if operation in _CONTROL_PLANE:
                if operation != "Discovery":
                    validation.check_auth(headers)
                self._fault(operation)
            status, payload, extra = handler(match, query, headers, body)
        except ApiError as error:
            status = error.status
            payload = error.body()
            extra = error.headers
        if isinstance(payload, bytes):
            data = payload
            content_type = "application/octet-stream"
        else:
            data = b"" if payload is None else json.dumps(payload).encode()
            content_type = "application/json; charset=utf-8"
        response_headers = [
            ("Content-Type", content_type),
            ("Content-Length", str(len(data))),
            ("x-ms-request-id", str(uuid.uuid4())),
            *extra,
        ]
        start_response(status_line(status), response_headers)
        return [data]

    def _fault(self, operation: str) -> None:
        fault = self.emulator.decide_fault(operation)
        if fault == "throttle":
            retry_after_ms = self.emulator.retry_after_ms
            if retry_after_ms % 1000 == 0:
                retry = [("Retry-After", str(retry_after_ms // 1000))]
            else:
                retry = [("x-ms-retry-after-ms", str(retry_after_ms))]
            raise ApiError(
                429, "TooManyRequests", "Rate limit exceeded; retry later.", headers=retry
            )
        if fault == "error":
            raise ApiError(503, "ServiceUnavailable", "The service is unavailable.")

    def _route(self, method: str, path: str) -> tuple[str, Any, re.Match[str] | None]:
        for route_method, pattern, operation, handler in ROUTES:
            if method != route_method:
                continue
            match = re.fullmatch(pattern, path, flags=re.IGNORECASE)
            if match:
                return operation, getattr(self, handler), match
        return f"Unknown:{method} {path}", None, None

    # -- identity and discovery -----------------------------------------------------------

    def _token(self, _m: Any, query: dict[str, str], headers: dict[str, str], _b: Any) -> Answer:
        # App Service style (X-IDENTITY-HEADER, the client's) or Azure ML compute style
        # (the ``secret`` header, MSI_SECRET, what jobs get).
        given = headers.get("x-identity-header") or headers.get("secret")
        if given != self.emulator.identity_header:
            raise ApiError(401, "Unauthorized", "wrong or missing X-IDENTITY-HEADER or secret")
        resource = query.get("resource", "")
        expires = int(time.time()) + 3600
        token = {
            "access_token": self._access_token(resource, expires),
            "expires_on": str(expires),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": str(uuid.UUID(int=0)),
        }
        return 200, token, []

    def _access_token(self, resource: str, expires: int) -> str:
        """An unsigned JWT with the claims clients read (the SDK decodes ``tid``)."""

        def part(data: dict[str, Any]) -> str:
            raw = json.dumps(data, separators=(",", ":")).encode()
            return base64.urlsafe_b64encode(raw).decode().rstrip("=")

        claims = {
            "aud": resource,
            "iss": self.emulator.endpoint_url + "/",
            "exp": expires,
            "tid": self.emulator.tenant_id,
            "oid": str(uuid.UUID(int=1)),
            "sub": "steplift-emulator",
        }
        return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.emulator"

    def _metadata(self, *_args: Any) -> Answer:
        base = self.emulator.endpoint_url
        return (
            200,
            [
                {
                    "name": "StepliftEmulator",
                    "resourceManager": base + "/",
                    "portal": base + "/",
                    "authentication": {"loginEndpoint": base + "/", "audiences": [base + "/"]},
                    "suffixes": {"storage": "core.windows.net"},
                }
            ],
            [],
        )

    def _discovery(self, *_args: Any) -> Answer:
        base = self.emulator.endpoint_url
        keys = (
            "api",
            "catalog",
            "experimentation",
            "gallery",
            "history",
            "hyperdrive",
            "labeling",
            "modelmanagement",
            "pipelines",
            "studio",
        )
        return 200, {key: base for key in keys}, []

    # -- the workspace and its assets -------------------------------------------------------

    def _check_workspace(self, match: re.Match[str]) -> str:
        emulator = self.emulator
        sub, rg, ws = match.group("sub"), match.group("rg"), match.group("ws")
        if sub.lower() != emulator.subscription_id.lower():
            raise ApiError(404, "SubscriptionNotFound", f"The subscription '{sub}' was not found.")
        if rg.lower() != emulator.resource_group.lower():
            raise ApiError(404, "ResourceGroupNotFound", f"Resource group '{rg}' was not found.")
        if ws.lower() != emulator.workspace.lower():
            raise ApiError(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.MachineLearningServices/workspaces/{ws}' under "
                f"resource group '{rg}' was not found.",
            )
        return emulator.workspace_id

    def _get_workspace(self, match: re.Match[str], *_args: Any) -> Answer:
        workspace_id = self._check_workspace(match)
        base = self.emulator.endpoint_url
        workspace = self.emulator.workspace
        return (
            200,
            {
                "id": workspace_id,
                "name": workspace,
                "type": "Microsoft.MachineLearningServices/workspaces",
                "location": "westeurope",
                "kind": "Default",
                "sku": {"name": "Basic", "tier": "Basic"},
                "identity": {"type": "SystemAssigned"},
                "properties": {
                    "friendlyName": workspace,
                    "workspaceId": str(uuid.uuid5(uuid.NAMESPACE_URL, workspace_id)),
                    "discoveryUrl": base + "/discovery",
                    "mlFlowTrackingUri": "azureml://westeurope.api.azureml.ms/mlflow/v1.0"
                    + workspace_id,
                    "provisioningState": "Succeeded",
                    "publicNetworkAccess": "Enabled",
                },
            },
            [],
        )

    def _put_environment(self, match: re.Match[str], _q: Any, _h: Any, body: Any) -> Answer:
        workspace_id = self._check_workspace(match)
        name, version = match.group("env"), match.group("version")
        properties = validation.environment_properties(body)
        resource = {
            "id": f"{workspace_id}/environments/{name}/versions/{version}",
            "name": version,
            "type": "Microsoft.MachineLearningServices/workspaces/environments/versions",
            "properties": {**properties, "provisioningState": "Succeeded"},
        }
        self.emulator.environments[(name, version)] = resource
        return 200, resource, []

    def _get_environment(self, match: re.Match[str], *_args: Any) -> Answer:
        self._check_workspace(match)
        resource = self.emulator.environments.get((match.group("env"), match.group("version")))
        if resource is None:
            raise ApiError(404, "UserError", "Environment version not found.", "NotFound")
        return 200, resource, []

    def _get_compute(self, match: re.Match[str], *_args: Any) -> Answer:
        workspace_id = self._check_workspace(match)
        compute = self.emulator.computes.get(match.group("compute").lower())
        if compute is None:
            name = match.group("compute")
            raise ApiError(404, "ResourceNotFound", f"Compute '{name}' was not found.")
        return (
            200,
            {
                "id": f"{workspace_id}/computes/{compute.name}",
                "name": compute.name,
                "type": "Microsoft.MachineLearningServices/workspaces/computes",
                "location": "westeurope",
                "properties": {
                    "computeType": "AmlCompute",
                    "provisioningState": "Succeeded",
                    "properties": {
                        "vmSize": compute.vm_size,
                        "vmPriority": "LowPriority" if compute.low_priority else "Dedicated",
                        "scaleSettings": {"maxNodeCount": compute.max_nodes, "minNodeCount": 0},
                    },
                },
            },
            [],
        )

    # -- jobs -----------------------------------------------------------------------------

    def _put_job(self, match: re.Match[str], _q: Any, _h: Any, body: Any) -> Answer:
        emulator = self.emulator
        workspace_id = self._check_workspace(match)
        name = match.group("job")
        valid = validation.command_job(
            name,
            body,
            computes=emulator.computes,
            environments=emulator.environments,
            workspace=emulator.workspace,
        )
        table = emulator.job_table
        with table.lock:
            if name in table.jobs:
                raise ApiError(
                    409,
                    "UserError",
                    f"A job named '{name}' already exists; a job's properties cannot be changed.",
                    "JobAlreadyExists",
                )
            if emulator.faults.refuse_create == "quota":
                raise ApiError(
                    400,
                    "UserError",
                    "Not enough quota available for the requested "
                    "VM size in this region (QuotaExceeded).",
                    "QuotaExceeded",
                )
            experiment = str(valid.properties.get("experimentName") or "Default")
            stored = json.loads(json.dumps(body))
            stored.update(
                {
                    "id": f"{workspace_id}/jobs/{name}",
                    "name": name,
                    "type": "Microsoft.MachineLearningServices/workspaces/jobs",
                }
            )
            job = EmulatedJob(
                name,
                stored,
                experiment,
                instance_count=valid.instance_count,
                processes_per_instance=valid.processes_per_instance,
                distributed=valid.distributed,
                spot=valid.spot,
                timeout=valid.timeout,
            )
            job.command = container.mount_outputs(
                name, valid.properties, root=emulator.workdir, datastores=emulator.datastores
            )
            table.add(
                job,
                sandbox=emulator.sandbox,
                image=container.image_uri(valid.properties, emulator.environments),
                env_for_rank=emulator.env_maker(job),
            )
        return 201, self._job_resource(job), []

    def _job_resource(self, job: EmulatedJob) -> dict[str, Any]:
        with job.lock:
            resource: dict[str, Any] = json.loads(json.dumps(job.resource))
            status = job.status
        properties = resource.setdefault("properties", {})
        properties["status"] = status
        properties["services"] = {
            "Studio": {
                "jobServiceType": "Studio",
                "endpoint": f"{self.emulator.endpoint_url}/studio/jobs/{quote(job.name)}",
            },
        }
        resource["systemData"] = {
            "createdAt": job.created,
            "createdBy": "steplift-emulator",
            "createdByType": "User",
        }
        return resource

    def _job(self, match: re.Match[str]) -> EmulatedJob:
        name = match.group("job") if "job" in match.groupdict() else match.group("run")
        return self.emulator.job_table.get(name)

    def _read(self, job: EmulatedJob) -> dict[str, Any]:
        """The job as a read shows it (a scripted job takes its next step)."""
        self.emulator.job_table.read(job)
        return self._job_resource(job)

    def _get_job(self, match: re.Match[str], *_args: Any) -> Answer:
        self._check_workspace(match)
        return 200, self._read(self._job(match)), []

    def _list_jobs(self, match: re.Match[str], query: dict[str, str], *_args: Any) -> Answer:
        """A page of jobs, newest first, with the service's filters: ``listViewType``
        (emulated jobs are never archived), ``tag`` (a tag key), ``properties``
        (``name`` or ``name=value``, comma-separated, all must hold) and ``jobType``;
        ``$skip`` is the continuation token of the previous page's ``nextLink``."""
        self._check_workspace(match)
        view = query.get("listViewType") or "ActiveOnly"
        if view not in ("ActiveOnly", "ArchivedOnly", "All"):
            raise invalid(f"listViewType {view!r} is not one of ActiveOnly, ArchivedOnly, All.")
        newest_first = self.emulator.job_table.newest_first()
        after = query.get("$skip")
        if after:
            names = [job.name for job in newest_first]
            last = _skip_token_name(after)
            if last not in names:
                raise invalid(f"The continuation token {after!r} is not valid.")
            newest_first = newest_first[names.index(last) + 1 :]
        if view == "ArchivedOnly":
            newest_first = []
        wanted = [job for job in newest_first if _listed(job, query)]
        page = wanted[: self.emulator.list_page_size]
        answer: dict[str, Any] = {"value": [self._read(job) for job in page]}
        if len(wanted) > len(page):
            following = {k: v for k, v in query.items() if k != "$skip"}
            following["$skip"] = _skip_token(page[-1].name)
            answer["nextLink"] = (
                f"{self.emulator.endpoint_url}{match.group(0)}"
                f"?{urlencode(following, quote_via=quote)}"
            )
        return 200, answer, []

    def _cancel_job(self, match: re.Match[str], *_args: Any) -> Answer:
        self._check_workspace(match)
        job = self._job(match)
        self.emulator.job_table.cancel(job)
        location = f"{self.emulator.endpoint_url}/_operations/cancel/{quote(job.name)}"
        return 202, None, [("Location", location), ("x-ms-retry-after-ms", "10")]

    def _cancel_status(self, match: re.Match[str], *_args: Any) -> Answer:
        # The cancel operation succeeds once the request is accepted; the job then moves from
        # CancelRequested to Canceled on its own.
        self._job(match)
        return 200, None, []

    # -- the run history --------------------------------------------------------------------

    def _run_dto(self, job: EmulatedJob) -> dict[str, Any]:
        properties = job.resource.get("properties", {})
        compute = str(properties.get("computeId") or "serverless").rsplit("/", 1)[-1]
        with job.lock:
            dto: dict[str, Any] = {
                "runId": job.name,
                "runUuid": str(uuid.uuid5(uuid.NAMESPACE_URL, job.name)),
                "status": job.status,
                "target": compute,
                "createdUtc": job.created,
                "startTimeUtc": job.started,
                "endTimeUtc": job.ended,
                "experimentId": str(uuid.uuid5(uuid.NAMESPACE_URL, job.experiment)),
                "runType": "azureml.CommandJob",
                "error": job.error,
            }
        dto["logFiles"] = logs.log_file_urls(self.emulator.endpoint_url, job)
        return dto

    def _get_run(self, match: re.Match[str], *_args: Any) -> Answer:
        self._check_workspace(match)
        return 200, self._run_dto(self._job(match)), []

    def _run_details(self, match: re.Match[str], *_args: Any) -> Answer:
        self._check_workspace(match)
        job = self._job(match)
        details = self._run_dto(job)
        details["runDefinition"] = {
            "command": job.resource.get("properties", {}).get("command"),
            "nodeCount": job.instance_count,
        }
        return 200, details, []

    def _log_file(self, match: re.Match[str], _q: Any, headers: dict[str, str], _b: Any) -> Answer:
        job = self.emulator.jobs.get(match.group("job"))
        data = job.log_bytes(match.group("file")) if job else None
        range_header = headers.get("range") or headers.get("x-ms-range") or ""
        return logs.read_log_file(data, range_header)

    # -- Key Vault ----------------------------------------------------------------------------

    def _get_secret(
        self, match: re.Match[str], query: dict[str, str], headers: dict[str, str], _b: Any
    ) -> Answer:
        emulator = self.emulator
        return emulator.vault.get_secret(
            match.group("vault"),
            match.group("name"),
            match.group("version"),
            query,
            headers,
            challenge=f"{emulator.endpoint_url}/{emulator.tenant_id}",
        )


def _skip_token(name: str) -> str:
    """An opaque continuation token: the list resumes after the job ``name``."""
    return base64.urlsafe_b64encode(json.dumps({"after": name}).encode()).decode()


def _skip_token_name(token: str) -> str | None:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, json.JSONDecodeError):
        return None
    name = data.get("after") if isinstance(data, dict) else None
    return name if isinstance(name, str) else None


def _listed(job: EmulatedJob, query: Mapping[str, str]) -> bool:
    """Whether the job passes a jobs list's ``tag``, ``properties`` and ``jobType`` filters."""
    properties = job.resource.get("properties") or {}
    kind = query.get("jobType")
    if kind and str(properties.get("jobType") or "").lower() != kind.lower():
        return False
    tag = query.get("tag")
    if tag and tag not in (properties.get("tags") or {}):
        return False
    own = {str(k): str(v) for k, v in (properties.get("properties") or {}).items()}
    for condition in filter(None, (query.get("properties") or "").split(",")):
        name, has_value, value = condition.partition("=")
        if name.strip() not in own or (has_value and own[name.strip()] != value.strip()):
            return False
    return True
