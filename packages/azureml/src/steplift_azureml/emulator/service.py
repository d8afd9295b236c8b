"""The Azure ML emulator: the routes the real ``azure-ai-ml`` client calls, served over HTTPS.

Routes (``WS`` = ``/subscriptions/{sub}/resourceGroups/{rg}/providers/
Microsoft.MachineLearningServices/workspaces/{ws}``): managed-identity token, cloud metadata,
workspace GET (with its discovery URL), discovery, environment version PUT/GET, compute GET,
job PUT/GET, the jobs list (newest first; ``listViewType``, ``tag``, ``properties``,
``jobType`` filters; pages of ``list_page_size`` linked by ``nextLink`` with a ``$skip``
token), cancel (202 + Location, then the Location GET), run-history run and details
(``logFiles``, ``error``), log file GETs (with Range), and Key Vault's secret GET under
``/keyvault/{vault}/secrets/{name}[/{version}]`` (secrets are added in-process with
:meth:`AzureMLEmulator.add_secret`). Control API under ``/_steplift/``, with the kill-node
fault (``POST jobs/<id>/kill-node``, ``{"node": R}``) besides the shared routes.

Jobs run with the Azure ML compute's managed identity (``MSI_ENDPOINT``/``MSI_SECRET``) and
``STEPLIFT_AZUREML_KEYVAULT_ENDPOINT`` pointing every vault here.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeAlias
from urllib.parse import parse_qs, quote, urlencode

from steplift.testing.emulation import (
    ControlAPI,
    EmulatorBase,
    EmulatorMode,
    LocalServer,
    ScriptStep,
    StartResponse,
)
from steplift_azureml.emulator.certs import write_self_signed
from steplift_azureml.emulator.jobs import (
    DEFAULT_SCRIPT,
    STATUSES,
    EmulatedJob,
    JobRunner,
    emulator_base_env,
    error_body,
    job_environment,
    node_lost_error,
    preempted_error,
)
from steplift_azureml.emulator.storage import Azurite
from steplift_azureml.resources import vm_size
from steplift_azureml.secrets import API_VERSION as KEYVAULT_API_VERSION
from steplift_azureml.secrets import ENDPOINT_ENV as KEYVAULT_ENDPOINT_ENV

SERVICE = "azureml"
DEFAULT_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
DEFAULT_RESOURCE_GROUP = "steplift-rg"
DEFAULT_WORKSPACE = "steplift-ws"
DEFAULT_VAULT = "steplift-kv"
SECRET_NAME = re.compile(r"^[A-Za-z0-9-]{1,127}$")
VAULT_NAME = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){2,23}$")
JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")
_WS = (
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
    r"Microsoft\.MachineLearningServices/workspaces/(?P<ws>[^/]+)"
)
_HISTORY = (
    r"/history/v1\.0" + _WS + r"(?:/experiments/[^/]+|/experimentids/[^/]+)?/runs/(?P<run>[^/]+)"
)
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")
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


Answer: TypeAlias = tuple[int, Any, list[tuple[str, str]]]


@dataclass(frozen=True)
class Compute:
    """A compute cluster of the emulated workspace."""

    name: str
    vm_size: str
    low_priority: bool = False
    max_nodes: int = 4


DEFAULT_COMPUTES = (
    Compute("cpu-cluster", "Standard_DS3_v2"),
    Compute("gpu-cluster", "Standard_NC24ads_A100_v4"),
    Compute("spot-cluster", "Standard_NC24ads_A100_v4", low_priority=True),
)


class ApiError(Exception):
    """An error answer in Azure's shape."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        inner: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.inner = inner
        self.headers = list(headers)


def parse_duration(value: str) -> float:
    """ISO 8601 duration (``PT1H30M``) → seconds; ValueError when malformed."""
    match = _DURATION.match(value or "")
    if not match or value in ("P", "PT"):
        raise ValueError(f"not an ISO 8601 duration: {value!r}")
    days, hours, minutes, seconds = match.groups()
    return (int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes or 0) * 60) + float(
        seconds or 0
    )


_REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    206: "Partial Content",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    409: "Conflict",
    416: "Range Not Satisfiable",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class AzureMLEmulator(EmulatorBase):
    """The Azure ML API on 127.0.0.1 over HTTPS, executing or scripting command jobs.

    ``azurite=True`` starts an Azurite blob service for the emulator's lifetime; or pass a
    running :class:`Azurite`, or a ``storage_connection_string`` of your own. Jobs get that
    connection string as ``AZURE_STORAGE_CONNECTION_STRING`` (the job identity's access).
    """

    service_name = SERVICE

    def __init__(
        self,
        mode: EmulatorMode = "execute",
        *,
        port: int = 0,
        subscription_id: str = DEFAULT_SUBSCRIPTION,
        resource_group: str = DEFAULT_RESOURCE_GROUP,
        workspace: str = DEFAULT_WORKSPACE,
        computes: Sequence[Compute] = DEFAULT_COMPUTES,
        azurite: Azurite | bool = False,
        storage_connection_string: str | None = None,
        stop_grace: float = 2.0,
        retry_after_ms: int = 1000,
        control_port: int | None = 0,
        list_page_size: int = 100,
    ) -> None:
        super().__init__(mode)
        self.list_page_size = list_page_size
        """Jobs per page of the jobs list."""
        self.port = port
        self.subscription_id = subscription_id
        self.resource_group = resource_group
        self.workspace = workspace
        self.computes = {compute.name.lower(): compute for compute in computes}
        self._azurite_arg = azurite
        self._azurite: Azurite | None = None
        self._owns_azurite = False
        self._storage_connection_string = storage_connection_string
        self.stop_grace = stop_grace
        self.retry_after_ms = retry_after_ms
        self._control_port = control_port
        self.identity_header = secrets.token_hex(16)
        self.tenant_id = str(uuid.UUID(int=2))
        self.jobs: dict[str, EmulatedJob] = {}
        self.environments: dict[tuple[str, str], dict[str, Any]] = {}
        self.created_jobs = 0
        self.datastores = {"workspaceblobstore", "workspaceartifactstore", "workspacefilestore"}
        # (vault, secret name) -> versions, oldest first: (version, value, created).
        self._vault: dict[tuple[str, str], list[tuple[str, str, int]]] = {}
        self._runners: dict[str, JobRunner] = {}
        self._scripts: dict[str, list[ScriptStep]] = {}
        self._default_script: list[ScriptStep] = list(DEFAULT_SCRIPT)
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._server: LocalServer | None = None
        self._control: LocalServer | None = None
        self._base_env = emulator_base_env()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Self:
        self._tmp = tempfile.TemporaryDirectory(prefix="steplift-azureml-emulator-")
        folder = Path(self._tmp.name)
        try:
            self.cert_path, key_path = write_self_signed(folder)
            if isinstance(self._azurite_arg, Azurite):
                self._azurite = self._azurite_arg
            elif self._azurite_arg:
                self._azurite = Azurite().start()
                self._owns_azurite = True
            app = ControlAPI(self, self._app)
            cert = (self.cert_path, key_path)
            self._server = LocalServer(app, self.port, cert=cert, name="azureml-emulator").start()
            if self._control_port is not None:
                control = ControlAPI(self, _not_found)
                self._control = LocalServer(control, self._control_port, name="azureml-control")
                self._control.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self._stopping.set()
        for server in (self._server, self._control):
            if server is not None:
                server.stop()
        self._server = self._control = None
        with self._lock:
            runners = list(self._runners.values())
        for runner in runners:
            runner.job.cancel_requested = True
            runner.stop(grace=min(self.stop_grace, 1.0))
        for runner in runners:
            runner.thread.join(10)
        if self._owns_azurite and self._azurite is not None:
            self._azurite.stop()
        self._azurite = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp.name, ignore_errors=True)
            self._tmp.cleanup()
            self._tmp = None

    @property
    def endpoint_url(self) -> str:
        """https://127.0.0.1:PORT, the base of every cloud endpoint the client needs."""
        assert self._server is not None, "the emulator is not running"
        return self._server.url

    @property
    def control_url(self) -> str | None:
        """Plain-http base URL serving only ``/_steplift/`` (for :class:`EmulatorControl`)."""
        return self._control.url if self._control else None

    @property
    def azurite(self) -> Azurite | None:
        """The Azurite instance jobs use, if any."""
        return self._azurite

    @property
    def storage_connection_string(self) -> str | None:
        """The connection string given to jobs (Azurite's when it runs)."""
        if self._storage_connection_string:
            return self._storage_connection_string
        return self._azurite.connection_string if self._azurite else None

    def cloud_metadata(self) -> dict[str, str]:
        """The custom-cloud metadata that points an ``MLClient`` here."""
        base = self.endpoint_url
        return {
            "azure_portal": base + "/",
            "resource_manager": base + "/",
            "active_directory": base + "/",
            "aml_resource_id": base + "/",
            "storage_endpoint": "core.windows.net",
            "registry_discovery_endpoint": base + "/",
        }

    def client_env(self) -> dict[str, str]:
        env = {
            "REQUESTS_CA_BUNDLE": str(self.cert_path),
            "IDENTITY_ENDPOINT": self.endpoint_url + "/msi/token",
            "IDENTITY_HEADER": self.identity_header,
            "STEPLIFT_AZUREML_ENDPOINT": self.endpoint_url,
            KEYVAULT_ENDPOINT_ENV: self.keyvault_endpoint,
        }
        if self.storage_connection_string:
            env["AZURE_STORAGE_CONNECTION_STRING"] = self.storage_connection_string
        return env

    @property
    def keyvault_endpoint(self) -> str:
        """The base URL serving every emulated vault (``BASE/VAULT/secrets/NAME``)."""
        return self.endpoint_url + "/keyvault"

    # -- Key Vault ------------------------------------------------------------------------------

    def add_secret(self, name: str, value: str, *, vault: str = DEFAULT_VAULT) -> str:
        """Store a new version of secret ``name``; its reference (the version-less URI).

        In-process only, and not in the request log: the log never holds a secret's value.
        """
        if not SECRET_NAME.match(name):
            raise ValueError(f"{name!r} is not a Key Vault secret name (letters, digits, -)")
        if not VAULT_NAME.match(vault):
            raise ValueError(f"{vault!r} is not a Key Vault name")
        if not isinstance(value, str):
            raise TypeError("a secret's value is a string")
        version = uuid.uuid4().hex
        with self._lock:
            self._vault.setdefault((vault.lower(), name.lower()), []).append(
                (version, value, int(time.time()))
            )
        return f"https://{vault.lower()}.vault.azure.net/secrets/{name}"

    def secret_versions(self, name: str, *, vault: str = DEFAULT_VAULT) -> list[str]:
        """The versions of a secret, oldest first."""
        with self._lock:
            return [v[0] for v in self._vault.get((vault.lower(), name.lower()), [])]

    # -- the shared control API --------------------------------------------------------------

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._scripts.clear()
            self._default_script = list(DEFAULT_SCRIPT)

    def script(
        self, job_id: str | None, steps: Sequence[ScriptStep | str | Mapping[str, Any]]
    ) -> None:
        parsed = [ScriptStep.parse(step) for step in steps]
        if not parsed:
            raise ValueError("a script needs at least one step")
        for step in parsed:
            if step.status not in STATUSES:
                raise ValueError(
                    f"{step.status!r} is not an Azure ML job status; one of {sorted(STATUSES)}"
                )
        with self._lock:
            if job_id is None:
                self._default_script = parsed
            else:
                self._scripts[job_id] = parsed
                job = self.jobs.get(job_id)
                if job is not None:
                    job.script = list(parsed)

    def preempt(self, job_id: str) -> None:
        with self._lock:
            job = self.jobs[job_id]
            runner = self._runners.get(job_id)
        if not job.spot:
            raise ValueError(f"job {job_id} is not a spot job; only spot jobs are preempted")
        if job.is_terminal:
            raise ValueError(f"job {job_id} already ended ({job.status})")
        with job.lock:
            job.preempted = True
        if runner is not None:
            runner.stop(grace=0.5)
        else:
            job.set_status("Failed", preempted_error())

    def kill_node(self, job_id: str, node: int) -> None:
        """Kill every process of one instance of a running job, as when its host is lost.

        The other instances are stopped and the job fails naming the lost node. A scripted
        job fails the same way at once. KeyError: no such job; ValueError: it cannot be done.
        """
        with self._lock:
            job = self.jobs[job_id]
            runner = self._runners.get(job_id)
        if isinstance(node, bool) or not isinstance(node, int):
            raise ValueError(f"a node is an instance index, not {node!r}")
        if not 0 <= node < job.instance_count:
            raise ValueError(
                f"job {job_id} has {job.instance_count} instance(s); there is no node {node}"
            )
        with job.lock:
            if job.is_terminal:
                raise ValueError(f"job {job_id} already ended ({job.status})")
            if runner is not None and job.group is None:
                raise ValueError(f"job {job_id} is not running yet ({job.status})")
            job.lost_nodes.add(node)
        if runner is not None:
            runner.kill_node(node)
        else:
            job.set_status("Failed", node_lost_error(node))

    def register_environment(self, name: str, version: str, image: str) -> None:
        """Register an environment version, as ``az ml environment create`` would."""
        resource = {
            "id": f"{self._workspace_id()}/environments/{name}/versions/{version}",
            "name": version,
            "type": "Microsoft.MachineLearningServices/workspaces/environments/versions",
            "properties": {"image": image, "provisioningState": "Succeeded"},
        }
        with self._lock:
            self.environments[(name, version)] = resource

    def job_ids(self) -> list[str]:
        """Every job's name, oldest first."""
        with self._lock:
            return list(self.jobs)

    def is_running(self, job_id: str) -> bool:
        """True while any process of the job runs, on any instance."""
        job = self.jobs.get(job_id)
        return bool(job and job.alive())

    # -- WSGI ---------------------------------------------------------------------------------

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
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
        self.record(
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
                    self._check_auth(headers)
                fault = self.decide_fault(operation)
                if fault == "throttle":
                    raise ApiError(
                        429,
                        "TooManyRequests",
                        "Rate limit exceeded; retry later.",
                        headers=self._retry_after(),
                    )
                if fault == "error":
                    raise ApiError(503, "ServiceUnavailable", "The service is unavailable.")
            status, payload, extra = handler(match, query, headers, body)
        except ApiError as error:
            status = error.status
            payload = error_body(error.code, str(error), error.inner)
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
        start_response(f"{status} {_REASONS.get(status, 'Error')}", response_headers)
        return [data]

    def _retry_after(self) -> list[tuple[str, str]]:
        if self.retry_after_ms % 1000 == 0:
            return [("Retry-After", str(self.retry_after_ms // 1000))]
        return [("x-ms-retry-after-ms", str(self.retry_after_ms))]

    @staticmethod
    def _check_auth(headers: Mapping[str, str]) -> None:
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer ") or len(auth) <= len("Bearer "):
            raise ApiError(
                401,
                "AuthenticationFailed",
                "Authentication failed: no bearer token.",
                headers=[("WWW-Authenticate", 'Bearer authorization_uri="emulator"')],
            )

    _ROUTES: tuple[tuple[str, str, str, str], ...] = (
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
        ("GET", r"/_logs/(?P<job>[^/]+)/(?P<file>.+)", "GetLogFile", "_log_file"),
        (
            "GET",
            r"/keyvault/(?P<vault>[^/]+)/secrets/(?P<name>[^/]+)(?:/(?P<version>[^/]+))?/?",
            "GetSecret",
            "_get_secret",
        ),
    )

    def _route(self, method: str, path: str) -> tuple[str, Any, re.Match[str] | None]:
        for route_method, pattern, operation, handler in self._ROUTES:
            if method != route_method:
                continue
            match = re.fullmatch(pattern, path, flags=re.IGNORECASE)
            if match:
                return operation, getattr(self, handler), match
        return f"Unknown:{method} {path}", None, None

    # -- handlers -------------------------------------------------------------------------

    def _token(self, _m: Any, query: dict[str, str], headers: dict[str, str], _b: Any) -> Answer:
        # App Service style (X-IDENTITY-HEADER, the client's) or Azure ML compute style
        # (the ``secret`` header, MSI_SECRET, what jobs get).
        given = headers.get("x-identity-header") or headers.get("secret")
        if given != self.identity_header:
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
            "iss": self.endpoint_url + "/",
            "exp": expires,
            "tid": self.tenant_id,
            "oid": str(uuid.UUID(int=1)),
            "sub": "steplift-emulator",
        }
        return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.emulator"

    def _metadata(self, *_args: Any) -> Answer:
        base = self.endpoint_url
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
        base = self.endpoint_url
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

    def _check_workspace(self, match: re.Match[str]) -> str:
        sub, rg, ws = match.group("sub"), match.group("rg"), match.group("ws")
        if sub.lower() != self.subscription_id.lower():
            raise ApiError(404, "SubscriptionNotFound", f"The subscription '{sub}' was not found.")
        if rg.lower() != self.resource_group.lower():
            raise ApiError(404, "ResourceGroupNotFound", f"Resource group '{rg}' was not found.")
        if ws.lower() != self.workspace.lower():
            raise ApiError(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.MachineLearningServices/workspaces/{ws}' under "
                f"resource group '{rg}' was not found.",
            )
        return self._workspace_id()

    def _workspace_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.MachineLearningServices/workspaces/{self.workspace}"
        )

    def _get_workspace(self, match: re.Match[str], *_args: Any) -> Answer:
        workspace_id = self._check_workspace(match)
        base = self.endpoint_url
        return (
            200,
            {
                "id": workspace_id,
                "name": self.workspace,
                "type": "Microsoft.MachineLearningServices/workspaces",
                "location": "westeurope",
                "kind": "Default",
                "sku": {"name": "Basic", "tier": "Basic"},
                "identity": {"type": "SystemAssigned"},
                "properties": {
                    "friendlyName": self.workspace,
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
        properties = (body or {}).get("properties") or {}
        if not properties.get("image") and not properties.get("build"):
            raise ApiError(
                400,
                "UserError",
                "An environment needs an image or a build context.",
                "ValidationError",
            )
        resource = {
            "id": f"{workspace_id}/environments/{name}/versions/{version}",
            "name": version,
            "type": "Microsoft.MachineLearningServices/workspaces/environments/versions",
            "properties": {**properties, "provisioningState": "Succeeded"},
        }
        with self._lock:
            self.environments[(name, version)] = resource
        return 200, resource, []

    def _get_environment(self, match: re.Match[str], *_args: Any) -> Answer:
        self._check_workspace(match)
        resource = self.environments.get((match.group("env"), match.group("version")))
        if resource is None:
            raise ApiError(404, "UserError", "Environment version not found.", "NotFound")
        return 200, resource, []

    def _get_compute(self, match: re.Match[str], *_args: Any) -> Answer:
        workspace_id = self._check_workspace(match)
        compute = self.computes.get(match.group("compute").lower())
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

    def _validate_job(self, name: str, body: Any) -> tuple[dict[str, Any], bool, float | None, int]:
        if not JOB_NAME.match(name):
            raise _invalid(
                f"Job name '{name}' is invalid: use 1-255 letters, digits, '-' or '_', starting "
                "with a letter or digit."
            )
        properties = (body or {}).get("properties")
        if not isinstance(properties, dict):
            raise _invalid("The request body needs 'properties'.")
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
            raise _invalid("A command job needs an environment.")
        env_match = re.search(r"/environments/([^/]+)/versions/([^/]+)$", environment_id)
        if (
            env_match
            and not environment_id.startswith("azureml://registries/")
            and (env_match.group(1), env_match.group(2)) not in self.environments
        ):
            raise ApiError(
                404, "UserError", f"Environment {environment_id} was not found.", "NotFound"
            )
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
            compute = self.computes.get(compute_name.lower())
            if compute is None:
                raise ApiError(
                    400,
                    "UserError",
                    f"Compute '{compute_name}' was not found in workspace '{self.workspace}'.",
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
        if tier is not None and tier not in ("Null", "Spot", "Basic", "Standard", "Premium"):
            raise ApiError(
                400,
                "UserError",
                f"queueSettings.jobTier {tier!r} is not one of "
                "Null, Spot, Basic, Standard, Premium.",
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
                raise ApiError(
                    400, "UserError", "limits.timeout must be positive.", "ValidationError"
                )
        return properties, spot, timeout, count

    def _put_job(self, match: re.Match[str], _q: Any, _h: Any, body: Any) -> Answer:
        workspace_id = self._check_workspace(match)
        name = match.group("job")
        properties, spot, timeout, count = self._validate_job(name, body)
        distributed, processes = _distribution(properties)
        with self._lock:
            if name in self.jobs:
                raise ApiError(
                    409,
                    "UserError",
                    f"A job named '{name}' already exists; a job's properties cannot be changed.",
                    "JobAlreadyExists",
                )
            if self.faults.refuse_create == "quota":
                raise ApiError(
                    400,
                    "UserError",
                    "Not enough quota available for the requested "
                    "VM size in this region (QuotaExceeded).",
                    "QuotaExceeded",
                )
            experiment = str(properties.get("experimentName") or "Default")
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
                instance_count=count,
                processes_per_instance=processes,
                distributed=distributed,
                spot=spot,
                timeout=timeout,
            )
            job.command = self._mount_outputs(name, properties)
            self.jobs[name] = job
            self.created_jobs += 1
            if self.mode == "scripted":
                job.script = list(self._scripts.get(name, self._default_script))
                job.set_status("NotStarted")
            else:
                runner = JobRunner(
                    job,
                    workdir=Path(self._tmp.name if self._tmp else ".") / "jobs",
                    env_for_rank=self._env_maker(job),
                    refuse_capacity=lambda: self.faults.refuse_create == "capacity",
                    stuck=lambda: self.faults.stuck_in_queue,
                    wait_for_change=self.wait_for_faults_change,
                    stopping=self._stopping,
                    grace=self.stop_grace,
                )
                self._runners[name] = runner
                runner.start()
        return 201, self._job_resource(job), []

    def datastore_folder(self, datastore: str, path: str) -> Path:
        """The host folder standing in for ``azureml://datastores/DATASTORE/paths/PATH``."""
        assert self._tmp is not None, "the emulator is not running"
        return Path(self._tmp.name, "datastores", datastore, *path.strip("/").split("/"))

    def _mount_outputs(self, name: str, properties: dict[str, Any]) -> str:
        """Mount each output (a host folder) and substitute ${{outputs.NAME}} in the command."""
        command = str(properties["command"])
        folders: dict[str, Path] = {}
        for output, spec in (properties.get("outputs") or {}).items():
            spec = spec or {}
            kind = spec.get("jobOutputType")
            if kind not in ("uri_folder", "uri_file"):
                raise _invalid(
                    f"Output '{output}': the emulator mounts uri_folder/uri_file "
                    f"outputs, not {kind!r}."
                )
            uri = str(spec.get("uri") or "")
            if not uri:
                folder = Path(self._tmp.name if self._tmp else ".", "jobs", name, "outputs", output)
            else:
                match = re.fullmatch(r"azureml://datastores/([^/]+)/paths/(.+)", uri)
                if not match:
                    raise _invalid(f"Output '{output}': unsupported uri {uri!r}.")
                if match.group(1) not in self.datastores:
                    raise _invalid(f"Datastore '{match.group(1)}' was not found.", "NotFound")
                folder = self.datastore_folder(match.group(1), match.group(2))
            folder.mkdir(parents=True, exist_ok=True)
            folders[output] = folder
        for reference in re.findall(r"\$\{\{\s*(\w+)\.(\w+)\s*\}\}", command):
            if reference[0] != "outputs" or reference[1] not in folders:
                raise _invalid(
                    f"The command refers to ${{{{{reference[0]}.{reference[1]}}}}}, "
                    "which the job does not define."
                )
        return re.sub(
            r"\$\{\{\s*outputs\.(\w+)\s*\}\}",
            lambda found: str(folders[found.group(1)]),
            command,
        )

    def _env_maker(self, job: EmulatedJob) -> Callable[[int, int], dict[str, str]]:
        def env_for_rank(rank: int, master_port: int) -> dict[str, str]:
            return job_environment(
                job,
                rank=rank,
                base=self._base_env,
                service_env=self._service_env(),
                master_port=master_port,
            )

        return env_for_rank

    def _service_env(self) -> dict[str, str]:
        env = {
            # The compute's managed identity, as Azure ML provides it to a job.
            "MSI_ENDPOINT": self.endpoint_url + "/msi/token",
            "MSI_SECRET": self.identity_header,
            "REQUESTS_CA_BUNDLE": str(self.cert_path),
            KEYVAULT_ENDPOINT_ENV: self.keyvault_endpoint,
            "AZUREML_ARM_SUBSCRIPTION": self.subscription_id,
            "AZUREML_ARM_RESOURCEGROUP": self.resource_group,
            "AZUREML_ARM_WORKSPACE_NAME": self.workspace,
            "AZUREML_SERVICE_ENDPOINT": self.endpoint_url,
            "AZUREML_DISCOVERY_SERVICE_ENDPOINT": self.endpoint_url + "/discovery",
        }
        if self.storage_connection_string:
            env["AZURE_STORAGE_CONNECTION_STRING"] = self.storage_connection_string
        return env

    def _job_resource(self, job: EmulatedJob) -> dict[str, Any]:
        with job.lock:
            resource: dict[str, Any] = json.loads(json.dumps(job.resource))
            status = job.status
        properties = resource.setdefault("properties", {})
        properties["status"] = status
        properties["services"] = {
            "Studio": {
                "jobServiceType": "Studio",
                "endpoint": f"{self.endpoint_url}/studio/jobs/{quote(job.name)}",
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
        job = self.jobs.get(name)
        if job is None:
            raise ApiError(404, "UserError", f"Could not find job '{name}'.", "NotFound")
        return job

    def _read(self, job: EmulatedJob) -> dict[str, Any]:
        """The job as a read shows it: in scripted mode every read, a get or a list entry,
        takes the job's next scripted step."""
        if self.mode == "scripted" and not (
            self.faults.stuck_in_queue and job.status in ("NotStarted", "Queued")
        ):
            job.advance_script()
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
            raise _invalid(f"listViewType {view!r} is not one of ActiveOnly, ArchivedOnly, All.")
        with self._lock:
            newest_first = list(reversed(self.jobs.values()))
        after = query.get("$skip")
        if after:
            names = [job.name for job in newest_first]
            last = _skip_token_name(after)
            if last not in names:
                raise _invalid(f"The continuation token {after!r} is not valid.")
            newest_first = newest_first[names.index(last) + 1 :]
        if view == "ArchivedOnly":
            newest_first = []
        wanted = [job for job in newest_first if _listed(job, query)]
        page = wanted[: self.list_page_size]
        answer: dict[str, Any] = {"value": [self._read(job) for job in page]}
        if len(wanted) > len(page):
            following = {k: v for k, v in query.items() if k != "$skip"}
            following["$skip"] = _skip_token(page[-1].name)
            answer["nextLink"] = (
                f"{self.endpoint_url}{match.group(0)}?{urlencode(following, quote_via=quote)}"
            )
        return 200, answer, []

    def _cancel_job(self, match: re.Match[str], *_args: Any) -> Answer:
        self._check_workspace(match)
        job = self._job(match)
        with job.lock:
            if not job.is_terminal:
                job.cancel_requested = True
                job.set_status("CancelRequested")
        runner = self._runners.get(job.name)
        if runner is not None:
            # Stopping takes up to the grace period: do it off the request thread.
            threading.Thread(target=runner.stop, name=f"cancel-{job.name}", daemon=True).start()
        elif not job.is_terminal:
            job.set_status("Canceled")
        location = f"{self.endpoint_url}/_operations/cancel/{quote(job.name)}"
        return 202, None, [("Location", location), ("x-ms-retry-after-ms", "10")]

    def _cancel_status(self, match: re.Match[str], *_args: Any) -> Answer:
        # The cancel operation succeeds once the request is accepted; the job then moves from
        # CancelRequested to Canceled on its own.
        self._job(match)
        return 200, None, []

    def _run_dto(self, job: EmulatedJob) -> dict[str, Any]:
        properties = job.resource.get("properties", {})
        compute = str(properties.get("computeId") or "serverless").rsplit("/", 1)[-1]
        with job.lock:
            files = sorted(job.logs)
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
        dto["logFiles"] = {
            file: f"{self.endpoint_url}/_logs/{quote(job.name)}/{file}?sv=emulator&sig=x"
            for file in files
        }
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

    def _get_secret(
        self, match: re.Match[str], query: dict[str, str], headers: dict[str, str], _b: Any
    ) -> Answer:
        vault, name, version = match.group("vault"), match.group("name"), match.group("version")
        if not query.get("api-version"):
            raise ApiError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for "
                f"all requests; this vault serves {KEYVAULT_API_VERSION}.",
            )
        audience = _token_audience(headers.get("authorization", ""))
        if audience is None or not audience.rstrip("/").startswith("https://vault."):
            challenge = (
                f'Bearer authorization="{self.endpoint_url}/{self.tenant_id}", '
                'resource="https://vault.azure.net"'
            )
            raise ApiError(
                401,
                "Unauthorized",
                "AKV10000: Request is missing a Bearer or PoP token for Key Vault.",
                headers=[("WWW-Authenticate", challenge)],
            )
        with self._lock:
            versions = list(self._vault.get((vault.lower(), name.lower()), []))
        if version is not None:
            versions = [entry for entry in versions if entry[0] == version.lower()]
        if not versions:
            shown = f"{name}/{version}" if version else name
            raise ApiError(
                404,
                "SecretNotFound",
                f"A secret with (name/id) {shown} was not found in this key vault.",
            )
        found, value, created = versions[-1]
        return (
            200,
            {
                "value": value,
                "id": f"https://{vault.lower()}.vault.azure.net/secrets/{name}/{found}",
                "attributes": {
                    "enabled": True,
                    "created": created,
                    "updated": created,
                    "recoveryLevel": "Recoverable+Purgeable",
                },
                "tags": {},
            },
            [],
        )

    def _log_file(self, match: re.Match[str], _q: Any, headers: dict[str, str], _b: Any) -> Answer:
        job = self.jobs.get(match.group("job"))
        data = job.log_bytes(match.group("file")) if job else None
        if data is None:
            raise ApiError(404, "BlobNotFound", "The specified blob does not exist.")
        range_header = headers.get("range") or headers.get("x-ms-range") or ""
        range_match = re.fullmatch(r"bytes=(\d+)-(\d*)", range_header.strip())
        if not range_match:
            return 200, data, [("Accept-Ranges", "bytes")]
        start = int(range_match.group(1))
        end = int(range_match.group(2)) if range_match.group(2) else len(data) - 1
        if start >= len(data):
            raise ApiError(
                416,
                "InvalidRange",
                "The range specified is invalid for the current size of the resource.",
                headers=[("Content-Range", f"bytes */{len(data)}")],
            )
        end = min(end, len(data) - 1)
        return 206, data[start : end + 1], [("Content-Range", f"bytes {start}-{end}/{len(data)}")]


def _token_audience(authorization: str) -> str | None:
    """The ``aud`` claim of a bearer token (emulator tokens are unsigned JWTs)."""
    if not authorization.startswith("Bearer "):
        return None
    parts = authorization[len("Bearer ") :].split(".")
    if len(parts) < 2:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, json.JSONDecodeError):
        return None
    audience = claims.get("aud") if isinstance(claims, dict) else None
    return audience if isinstance(audience, str) else None


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


def _distribution(properties: dict[str, Any]) -> tuple[bool, int]:
    """(has a PyTorch distribution, its processCountPerInstance) of a command job."""
    distribution = properties.get("distribution")
    if distribution is None:
        return False, 1
    if not isinstance(distribution, dict):
        raise _invalid("distribution must be an object.")
    kind = distribution.get("distributionType")
    if kind != "PyTorch":
        raise _invalid(f"The emulator runs PyTorch distributions, not {kind!r}.")
    processes = distribution.get("processCountPerInstance", 1)
    if processes is None:
        processes = 1
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise _invalid("distribution.processCountPerInstance must be 1 or more.")
    return True, processes


def _invalid(message: str, inner: str = "ValidationError") -> ApiError:
    return ApiError(400, "UserError", message, inner)


def _not_found(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    data = b'{"error": {"code": "NotFound", "message": "control port: only /_steplift/"}}'
    start_response(
        "404 Not Found", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]
