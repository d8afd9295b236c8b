"""`VertexEmulator`: Vertex AI customJobs, Cloud Logging entries:list and Cloud Storage on
127.0.0.1, for the unmodified google-cloud clients.

The Vertex and Logging routes are served here (standard library WSGI server, one thread per
request, Nagle off); Cloud Storage is gcp-storage-emulator (the ``emulator`` extra) on its own
port, reached by clients and jobs through ``STORAGE_EMULATOR_HOST``.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import sys
import threading
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Self

from steplift.testing.emulation import (
    ControlAPI,
    EmulatorBase,
    EmulatorMode,
    LocalServer,
    ScriptStep,
)
from steplift_vertex.emulator.jobs import EmulatedJob, JobService
from steplift_vertex.emulator.logbook import LogBook
from steplift_vertex.emulator.secrets import (
    ACCESS,
    ADD_VERSION,
    COLLECTION,
    SECRET,
    SecretStore,
    payload_data,
)
from steplift_vertex.emulator.wire import ApiError, job_to_wire

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
DEFAULT_PROJECT = "steplift-emulator"
DEFAULT_BUCKET = "steplift-staging"

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
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class VertexEmulator(EmulatorBase):
    """Vertex AI CustomJobs (+ Logging, + GCS) on 127.0.0.1.

    ``mode="execute"`` runs every replica of each job as a local process; ``"scripted"`` moves
    a job one step per status read, a ``get`` of it or a ``list`` page showing it (see
    :meth:`script`). ``buckets`` are created in the GCS emulator (``gcs=False`` serves no
    storage, e.g. without the ``emulator`` extra).
    """

    service_name = "aiplatform"

    def __init__(
        self,
        mode: EmulatorMode = "execute",
        *,
        port: int = 0,
        project: str = DEFAULT_PROJECT,
        buckets: Sequence[str] = (DEFAULT_BUCKET,),
        gcs: bool = True,
        gcs_port: int = 0,
        stop_grace: float = 2.0,
    ) -> None:
        super().__init__(mode)
        self.port = port
        self.project = project
        self.buckets = tuple(buckets)
        self.gcs = gcs
        self.gcs_port = gcs_port
        self.logbook = LogBook()
        self.jobs = JobService(mode, self, self.logbook.append, grace=stop_grace)
        self.secrets = SecretStore()
        self._server: LocalServer | None = None
        self._gcs_server: Any = None
        self._gcs_url: str | None = None

    # -- endpoints -----------------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        """http://127.0.0.1:PORT of the Vertex AI and Logging API."""
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return self._server.url

    @property
    def storage_url(self) -> str | None:
        """http://127.0.0.1:PORT of the GCS emulator (None without GCS)."""
        return self._gcs_url

    def client_env(self) -> dict[str, str]:
        """What a client process needs: project, storage endpoint, no proxy for 127.0.0.1."""
        env = {"GOOGLE_CLOUD_PROJECT": self.project, "NO_PROXY": f"{HOST},localhost"}
        if self._gcs_url:
            env["STORAGE_EMULATOR_HOST"] = self._gcs_url
        return env

    def job_env(self) -> dict[str, str]:
        """What an emulated job's container sees of the emulated cloud."""
        return self.client_env()

    def operator_config(self, bucket: str | None = None) -> dict[str, Any]:
        """The ``vertex`` operator fields that point at this emulator."""
        config: dict[str, Any] = {
            "project": self.project,
            "location": "us-central1",
            "image": "local/steplift:emulated",
            "staging_bucket": f"gs://{bucket or self.buckets[0]}/steplift",
            "api_endpoint": self.endpoint_url,
            "logging_endpoint": self.endpoint_url,
            "secrets_endpoint": self.endpoint_url,
            "credentials": "anonymous",
        }
        if self._gcs_url:
            config["storage_endpoint"] = self._gcs_url
        return config

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Self:
        """Serve on 127.0.0.1 (port 0: a free one) from background threads."""
        if self._server is not None:
            return self
        if self.gcs:
            self._start_gcs()
        app = ControlAPI(self, self._app)
        self._server = LocalServer(app, self.port, name="vertex-emulator").start()
        return self

    def _start_gcs(self) -> None:
        try:
            from gcp_storage_emulator.server import create_server  # type: ignore[import-untyped]
        except ImportError as error:
            raise RuntimeError(
                'the GCS emulator is missing: pip install "steplift-vertex[emulator]"'
            ) from error
        from gcp_storage_emulator.handlers import buckets  # type: ignore[import-untyped]

        gcs = create_server(HOST, self.gcs_port, in_memory=True)
        gcs.start()
        # gcp-storage-emulator keeps its HTTP server on the API thread (`_api._httpd`).
        httpd = gcs._api._httpd
        port = httpd.server_address[1]
        print_error = httpd.handle_error

        def handle_error(request: Any, client_address: Any) -> None:
            # A client that went away mid-response (a killed launcher) is not an error.
            if not isinstance(sys.exc_info()[1], ConnectionError):
                print_error(request, client_address)

        httpd.handle_error = handle_error
        for name in self.buckets:
            buckets.create_bucket(name, gcs._storage)
        self._gcs_server = gcs
        self._gcs_url = f"http://{HOST}:{port}"

    def stop(self) -> None:
        """End every job, stop serving (both servers) and join their threads."""
        self.jobs.shutdown()
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._gcs_server is not None:
            api_thread = self._gcs_server._api
            self._gcs_server.stop()
            # Its join() only shuts the server down; wait for the thread itself too.
            threading.Thread.join(api_thread, 10.0)
            self._gcs_server = None
            self._gcs_url = None

    # -- controls ------------------------------------------------------------------------------

    def reset(self) -> None:
        """Clear faults, scripts and the request log (jobs stay)."""
        super().reset()
        self.jobs.reset_scripts()

    def preempt(self, job_id: str) -> None:
        """Reclaim a running Spot job's VM: it fails with a preemption error."""
        self.jobs.preempt(job_id)

    def kill_node(self, job_id: str, rank: int) -> None:
        """Kill one replica of a running job (a lost host): node ``rank`` in node order
        (0 is workerpool0-0, 1 + i is workerpool1-i). The job then fails naming it."""
        self.jobs.kill_node(job_id, rank)

    def script(
        self, job_id: str | None, steps: Sequence[ScriptStep | str | Mapping[str, Any]]
    ) -> None:
        """Scripted mode: states (``"RUNNING"`` or ``"JOB_STATE_RUNNING"``) a job steps through;
        a failure is ``ScriptStep("FAILED", "RESOURCE_EXHAUSTED: no GPUs")``."""
        self.jobs.set_script(job_id, steps)

    def add_secret(self, name: str, value: str | bytes) -> str:
        """Store ``value`` as the newest version of a secret; returns the version's name.

        ``name`` is a secret id (in the emulator's project) or ``projects/<p>/secrets/<id>``.
        """
        project, secret_id = self.project, name
        if name.startswith("projects/"):
            parts = name.split("/")
            if len(parts) != 4 or parts[2] != "secrets":
                raise ValueError(f"{name!r} is not 'projects/<project>/secrets/<id>'")
            project, secret_id = parts[1], parts[3]
        return self.secrets.put(project, secret_id, value)

    def submissions(self) -> int:
        """CustomJobs created so far."""
        return len(self.jobs.all_jobs())

    def job_ids(self) -> list[str]:
        """Every CustomJob's number (the id `preempt` and `is_running` take), oldest first."""
        return [job.number for job in self.jobs.all_jobs()]

    def is_running(self, job_id: str) -> bool:
        """True while anything of the job (its runner or any replica's process) is alive."""
        return self.jobs.is_running(job_id)

    # -- the API -------------------------------------------------------------------------------

    def _app(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
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
            logger.exception("vertex emulator failed on %s %s", method, path)
            failure = ApiError("INTERNAL", f"emulator error: {error}")
            status, answer = failure.http_code, failure.body()
        payload = json.dumps(answer).encode()
        start_response(
            f"{status} {_REASONS.get(status, 'Error')}",
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
        params = {
            "method": method,
            "path": path,
            "query": {key: values[-1] for key, values in query.items()},
            "body": body,
        }
        if path.startswith("/v1/projects/") and "/secrets" in path:
            return self._secret_call(method, path, query, body)
        if path == "/v2/entries:list" and method == "POST":
            self.record("logging", "ListLogEntries", params)
            return 200, self.logbook.list(body or {})
        collection = _COLLECTION.match(path)
        resource = _RESOURCE.match(path)
        if collection:
            kind = "collection"
        elif resource:
            kind = "cancel" if resource.group(3) else "resource"
        else:
            raise ApiError("NOT_FOUND", f"The requested URL {path} was not found on this server.")
        operation = _OPERATIONS.get((method, kind))
        if operation is None:
            raise ApiError("UNIMPLEMENTED", f"{method} is not supported on {path}")
        self.record(self.service_name, operation, params)
        fault = self.decide_fault(operation)
        if fault == "throttle":
            raise ApiError(
                "RESOURCE_EXHAUSTED",
                "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_"
                "base_model: rate limit exceeded, retry later.",
            )
        if fault == "error":
            raise ApiError("UNAVAILABLE", "The service is currently unavailable.")
        if collection:
            project, location = collection.group(2), collection.group(3)
            if method == "POST":
                return 200, self._create(project, location, body, enums_as_ints)
            return 200, self._list(project, location, query, enums_as_ints)
        assert resource is not None
        name = resource.group(2)
        if kind == "cancel":
            self.jobs.cancel(name)
            return 200, {}
        if method == "DELETE":
            self.jobs.delete(name)
            return 200, {
                "name": f"{name}/operations/{abs(hash(name)) % 10**18}",
                "done": True,
                "response": {"@type": "type.googleapis.com/google.protobuf.Empty"},
            }
        return 200, job_to_wire(self.jobs.get(name).resource, enums_as_ints)

    def _secret_call(
        self, method: str, path: str, query: dict[str, list[str]], body: dict[str, Any] | None
    ) -> tuple[int, Any]:
        """Secret Manager routes; the request log gets the names, never a payload."""
        params = {
            "method": method,
            "path": path,
            "query": {key: values[-1] for key, values in query.items()},
        }
        match = None
        operation = None
        for pattern, verb, name in (
            (ACCESS, "GET", "AccessSecretVersion"),
            (ADD_VERSION, "POST", "AddSecretVersion"),
            (COLLECTION, "POST", "CreateSecret"),
            (SECRET, "GET", "GetSecret"),
        ):
            match = pattern.match(path)
            if match:
                if method != verb:
                    raise ApiError("UNIMPLEMENTED", f"{method} is not supported on {path}")
                operation = name
                break
        if match is None or operation is None:
            raise ApiError("NOT_FOUND", f"The requested URL {path} was not found on this server.")
        self.record("secretmanager", operation, params)
        project = match.group(1)
        if operation == "AccessSecretVersion":
            fault = self.decide_fault(operation)
            if fault == "throttle":
                raise ApiError(
                    "RESOURCE_EXHAUSTED",
                    "Quota exceeded for quota metric 'Access requests' of service "
                    "'secretmanager.googleapis.com'.",
                )
            if fault == "error":
                raise ApiError("UNAVAILABLE", "The service is currently unavailable.")
            return 200, self.secrets.access(project, match.group(2), match.group(3))
        if operation == "AddSecretVersion":
            return 200, self.secrets.add_version(project, match.group(2), payload_data(body))
        if operation == "CreateSecret":
            secret_id = query.get("secretId", [""])[-1]
            if not secret_id:
                raise ApiError("INVALID_ARGUMENT", "secretId is required.")
            return 200, self.secrets.create(project, secret_id)
        return 200, self.secrets.get(project, match.group(2))

    def _create(
        self, project: str, location: str, body: dict[str, Any] | None, enums_as_ints: bool
    ) -> dict[str, Any]:
        if not body:
            raise ApiError(
                "INVALID_ARGUMENT",
                "List of found errors:\t1.Field: custom_job; Message: Required field is not set.",
            )
        if self.faults.refuse_create == "quota":
            raise ApiError(
                "RESOURCE_EXHAUSTED",
                "The following quota metrics exceed quota limits: "
                "aiplatform.googleapis.com/custom_model_training_gpus",
            )
        job: EmulatedJob = self.jobs.create(project, location, body)
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
        jobs, token = self.jobs.list(
            f"projects/{project}/locations/{location}", one("filter"), size, one("pageToken")
        )
        answer: dict[str, Any] = {}
        if jobs:
            answer["customJobs"] = [job_to_wire(job.resource, enums_as_ints) for job in jobs]
        if token:
            answer["nextPageToken"] = token
        return answer


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


def free_port() -> int:
    """A port nobody listens on right now (for callers that must know it in advance)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port
