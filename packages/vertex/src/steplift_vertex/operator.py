"""The ``vertex`` step operator: each step attempt is one Vertex AI CustomJob.

Talks to Vertex AI through the low-level ``aiplatform_v1.JobServiceClient`` over REST, with
project, location, endpoint and credentials always explicit (never a metadata-server probe).
The Google SDK is imported inside the methods that call it.

A step of several nodes is one job of two worker pools: the chief (``workerPoolSpecs[0]``,
always one replica, as Vertex requires) and ``nodes - 1`` workers in ``workerPoolSpecs[1]``
with the same machine, disk and container; each replica finds its place in ``CLUSTER_SPEC``.

Vertex assigns job ids itself, so the job carries a label derived from the step attempt and
``find_job`` lists by that label: a relaunch adopts the job instead of creating a second one,
and a create that failed in transit is only retried (by the shared launch) after checking
that it did not go through.

The statuses of the jobs that the launches of one process are waiting for come from one
``customJobs.list`` (a page per 100 jobs) instead of one ``get`` per job: see
:meth:`VertexStepOperator.get_statuses`.
"""

from __future__ import annotations

import copy
import hashlib
import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from steplift.errors import ConfigError, StepFailed
from steplift.launch.policy import LaunchPolicy
from steplift.models import JobHandle, JobStatus, LogChunk, StepRunInfo
from steplift.operator import StepOperator
from steplift.polling import DEFAULT_CLOCK, DEFAULT_SLEEP, Clock, Sleep
from steplift.states import FailureKind, JobState
from steplift.store import ArtifactStore, join_uri
from steplift_vertex.config import (
    MAX_DISPLAY_NAME,
    RESERVED_LABEL_PREFIX,
    VertexStepOperatorConfig,
    check_labels,
)
from steplift_vertex.logs import DEFAULT_LOGGING_ENDPOINT, read_job_logs
from steplift_vertex.resources import (
    DEFAULT_CPU_MACHINE,
    MachineSpec,
    check_machine,
    machine_for_gpu,
)
from steplift_vertex.secrets import CREDENTIALS_ENV, ENDPOINT_ENV
from steplift_vertex.status import job_status
from steplift_vertex.store import GCSArtifactStore

if TYPE_CHECKING:
    from datetime import datetime

    from google.api_core.retry import Retry
    from google.cloud.aiplatform_v1 import CustomJob, JobServiceClient

KEY_LABEL = f"{RESERVED_LABEL_PREFIX}key"
"""The label that identifies a step attempt's job (a digest: label values are short)."""

_LABEL_UNSAFE = re.compile(r"[^a-z0-9_-]+")
MIN_BOOT_DISK_GB = 100


@dataclass(frozen=True)
class RetrySettings:
    """Transport retries (google.api_core) of reads and cancels: exponential, bounded."""

    initial: float = 1.0
    maximum: float = 30.0
    multiplier: float = 2.0
    timeout: float = 120.0


def attempt_label(info: StepRunInfo) -> str:
    """The ``steplift-key`` label value of a step attempt (its key and artifact folder)."""
    return hashlib.sha256(f"{info.attempt_key}\n{info.artifact_uri}".encode()).hexdigest()[:40]


def _label_value(text: str) -> str:
    return _LABEL_UNSAFE.sub("-", text.lower()).strip("-")[:63]


def _is_transient(error: BaseException) -> bool:
    """429, 500, 502, 503, 504 and connection failures: worth asking again."""
    import requests
    from google.api_core import exceptions

    if isinstance(error, exceptions.RetryError):
        # The SDK's retries ran out on a transient error: still transient for the launch.
        return error.cause is not None and _is_transient(error.cause)
    return isinstance(
        error,
        exceptions.TooManyRequests
        | exceptions.InternalServerError
        | exceptions.BadGateway
        | exceptions.ServiceUnavailable
        | exceptions.GatewayTimeout
        | requests.exceptions.ConnectionError
        | requests.exceptions.Timeout,
    )


class JobNotCreated(StepFailed):
    """A create call that failed in a way worth trying again: 429, 5xx, a lost connection.

    The launch tries the create again, each time after ``find_job`` checked that the job did
    not appear anyway, for as long as its transient budget allows (slowing down as it polls);
    if it gives up, the step fails with this error: ``FailureKind.QUOTA`` for a 429
    (RESOURCE_EXHAUSTED), ``INFRASTRUCTURE`` otherwise, and provider state ``NOT_CREATED``.
    """

    def __init__(self, error: Exception) -> None:
        from google.api_core import exceptions

        quota = isinstance(error, exceptions.TooManyRequests)
        super().__init__(
            f"Vertex AI did not create the job: {error}",
            failure_kind=FailureKind.QUOTA if quota else FailureKind.INFRASTRUCTURE,
            provider_state="NOT_CREATED",
        )


def rpc_status(error: BaseException) -> str | None:
    """The ``error.status`` (google.rpc code name) of a REST error answer, if it has one."""
    response = getattr(error, "response", None)
    try:
        status = response.json()["error"]["status"] if response is not None else None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return str(status) if status else None


class VertexStepOperator(StepOperator[VertexStepOperatorConfig]):
    """Runs each step attempt as a Vertex AI CustomJob; artifacts live in Cloud Storage."""

    transport_retry: ClassVar[RetrySettings] = RetrySettings()
    call_timeout: ClassVar[float] = 60.0
    """Seconds one HTTP call may take."""
    multi_node = True  # a chief pool of one replica and a worker pool of nodes - 1
    launch_policy = LaunchPolicy(batched_status=True)  # customJobs.list answers many at once
    status_page_size: ClassVar[int] = 100
    """Jobs per page of the list call behind :meth:`get_statuses`."""

    def __init__(
        self,
        config: VertexStepOperatorConfig,
        *,
        name: str = "default",
        clock: Clock = DEFAULT_CLOCK,
        sleep: Sleep = DEFAULT_SLEEP,
        policy: LaunchPolicy | None = None,
    ) -> None:
        super().__init__(config, name=name, clock=clock, sleep=sleep, policy=policy)
        self._store = GCSArtifactStore(
            project=config.project,
            endpoint=config.storage_endpoint,
            anonymous=True if config.credentials == "anonymous" else None,
        )
        self._client_lock = threading.Lock()
        self._client: JobServiceClient | None = None
        self._session: Any = None

    # -- identity ----------------------------------------------------------------------------

    @property
    def flavor(self) -> str:
        return "vertex"

    @property
    def artifact_store(self) -> ArtifactStore:
        return self._store

    @property
    def artifact_root(self) -> str:
        return self.config.staging_bucket

    def checkpoint_dir(self, info: StepRunInfo) -> str | None:
        """The step's checkpoint folder as the job sees it, kept across attempts.

        Vertex AI mounts Cloud Storage in training containers with Cloud Storage FUSE under
        ``/gcs/<bucket>/``, so files written there persist in the staging bucket.
        """
        bucket, _, prefix = self.config.staging_bucket[len("gs://") :].partition("/")
        parts = ("/gcs", bucket, prefix, "checkpoints", info.pipeline, info.run, info.step)
        return "/".join(part for part in parts if part)

    def job_environment(self, info: StepRunInfo) -> dict[str, str]:
        """The base environment, plus where and how the job reads its ``secrets``."""
        environment = super().job_environment(info)
        if self.config.secrets:
            environment[ENDPOINT_ENV] = self.config.secret_manager_endpoint
            if self.config.credentials == "anonymous":
                environment[CREDENTIALS_ENV] = "anonymous"
        return environment

    def warm_up(self) -> None:
        self.client  # noqa: B018 - imports aiplatform_v1 and builds the REST client

    def is_transient_error(self, error: Exception) -> bool:
        """429, 5xx and connection errors (also once the SDK's own retries gave up), and a
        create that failed with one of them (:class:`JobNotCreated`)."""
        return isinstance(error, JobNotCreated) or _is_transient(error)

    # -- SDK plumbing (lazy) -----------------------------------------------------------------

    def _credentials(self) -> Any:
        if self.config.credentials == "anonymous":
            from google.auth.credentials import AnonymousCredentials

            return AnonymousCredentials()  # type: ignore[no-untyped-call]
        import google.auth

        credentials, _ = google.auth.default(
            scopes=["https://www.googleapis.com/auth/cloud-platform"],
            quota_project_id=self.config.project,
        )
        return credentials

    @property
    def client(self) -> JobServiceClient:
        """The aiplatform_v1 JobServiceClient (REST), created on first use."""
        with self._client_lock:
            if self._client is None:
                from google.cloud.aiplatform_v1 import JobServiceClient

                self._client = JobServiceClient(
                    transport="rest",
                    credentials=self._credentials(),
                    client_options={"api_endpoint": self.config.vertex_endpoint},
                )
            return self._client

    def _retry(self) -> Retry:
        from google.api_core.retry import Retry

        settings = self.transport_retry
        return Retry(
            predicate=_is_transient,
            initial=settings.initial,
            maximum=settings.maximum,
            multiplier=settings.multiplier,
            timeout=settings.timeout,
        )

    def _post_json(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._client_lock:
            if self._session is None:
                if self.config.credentials == "anonymous":
                    import requests

                    self._session = requests.Session()
                    self._session.trust_env = False
                else:
                    from google.auth.transport.requests import AuthorizedSession

                    self._session = AuthorizedSession(  # type: ignore[no-untyped-call]
                        self._credentials()
                    )
            session = self._session
        response = session.post(url, json=body, timeout=self.call_timeout)
        if response.status_code >= 400:
            from google.api_core import exceptions

            raise exceptions.from_http_response(response)  # type: ignore[no-untyped-call]
        answer: dict[str, Any] = response.json()
        return answer

    # -- the job spec ------------------------------------------------------------------------

    def machine_spec(self, info: StepRunInfo) -> MachineSpec:
        """The machine of a step: the step's GPU request, else the config's machine or GPU."""
        config = self.config
        resources = info.resources
        try:
            if resources.gpu:
                return machine_for_gpu(
                    resources.gpu, cpu=resources.cpu, memory_gb=resources.memory_gb
                )
        except ValueError as error:
            raise ConfigError(
                str(error), field="resources.gpu", value=resources.gpu, has_value=True
            ) from None
        if config.gpu:
            try:
                return machine_for_gpu(config.gpu, cpu=resources.cpu, memory_gb=resources.memory_gb)
            except ValueError as error:  # the config's GPU exists: the step's CPU/memory not
                raise ConfigError(
                    str(error),
                    field="resources",
                    value=f"cpu={resources.cpu}, memory_gb={resources.memory_gb}",
                    has_value=True,
                ) from None
        if config.machine_type:
            return check_machine(
                config.machine_type, config.accelerator_type, config.accelerator_count
            )
        return MachineSpec(DEFAULT_CPU_MACHINE)

    def gpus_per_node(self, info: StepRunInfo) -> int:
        """The accelerators of each replica's machine (the step's, else the config's)."""
        return self.machine_spec(info).accelerator_count

    def boot_disk_gb(self, info: StepRunInfo) -> int | None:
        """The boot disk size of every replica (None: Vertex's default of 100 GB)."""
        disk_gb = info.resources.disk_gb or self.config.boot_disk_size_gb
        if disk_gb is not None and disk_gb < MIN_BOOT_DISK_GB:
            raise ConfigError(
                f"Vertex AI boot disks are at least {MIN_BOOT_DISK_GB} GB",
                field="resources.disk_gb",
                value=disk_gb,
                has_value=True,
            )
        return disk_gb

    def check_step(self, info: StepRunInfo) -> None:
        """Refuse, before any call, a step Vertex AI would refuse or could not run.

        Its machine (GPU type and count, CPU, memory), boot disk and tags are checked as the
        create call would check them. ``replica_count`` above 1 must equal the step's nodes:
        every replica runs the step's entrypoint, which refuses to run on a cluster of another
        size than the step asked for, so the job would fail on every machine it paid for.
        """
        super().check_step(info)
        self.machine_spec(info)
        self.boot_disk_gb(info)
        self.job_labels(info)
        replicas = self.config.replica_count
        if replicas > 1 and replicas != info.resources.nodes:
            raise ConfigError(
                f"replica_count = {replicas} would run the step on {replicas} machines, but it "
                f"asks for {info.resources.nodes} node(s); ask for nodes={replicas} on the step "
                "(--nodes on the CLI) instead",
                field="replica_count",
                value=replicas,
                has_value=True,
            )

    def display_name(self, info: StepRunInfo) -> str:
        """``<prefix>-<step attempt name>``, at most 128 characters."""
        prefix = self.config.display_name_prefix
        room = MAX_DISPLAY_NAME - len(prefix) - 1
        return f"{prefix}-{info.job_name(max_length=room, allowed='A-Za-z0-9_.-')}"

    def job_labels(self, info: StepRunInfo) -> dict[str, str]:
        """The config's labels, the step's tags and steplift's own labels."""
        try:
            tags = check_labels(dict(info.tags))
        except ValueError as error:
            raise ConfigError(str(error), field="tags", value=info.tags, has_value=True) from None
        return {
            **self.config.labels,
            **tags,
            KEY_LABEL: attempt_label(info),
            f"{RESERVED_LABEL_PREFIX}pipeline": _label_value(info.pipeline),
            f"{RESERVED_LABEL_PREFIX}run": _label_value(info.run),
            f"{RESERVED_LABEL_PREFIX}step": _label_value(info.step),
            f"{RESERVED_LABEL_PREFIX}attempt": str(info.attempt),
        }

    def job_fields(
        self, info: StepRunInfo, entrypoint_command: list[str], environment: dict[str, str]
    ) -> dict[str, Any]:
        """The CustomJob as GAPIC message fields (validated: ConfigError before any call)."""
        config = self.config
        self.check_step(info)
        machine = self.machine_spec(info)
        disk_gb = self.boot_disk_gb(info)
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
            scheduling["timeout"] = timedelta(seconds=math.ceil(max_runtime))
        if info.resources.use_spot(config.spot):
            scheduling["strategy"] = "SPOT"
        if config.restart_job_on_worker_restart:
            scheduling["restart_job_on_worker_restart"] = True
        spec: dict[str, Any] = {
            "worker_pool_specs": pools,
            "base_output_directory": {
                "output_uri_prefix": join_uri(
                    config.staging_bucket, "vertex-output", info.job_name()
                )
            },
        }
        if scheduling:
            spec["scheduling"] = scheduling
        for name in ("service_account", "network", "persistent_resource_id"):
            value = getattr(config, name)
            if value:
                spec[name] = value
        return {
            "display_name": self.display_name(info),
            "labels": self.job_labels(info),
            "job_spec": spec,
        }

    def build_job(
        self, info: StepRunInfo, entrypoint_command: list[str], environment: dict[str, str]
    ) -> CustomJob:
        """The CustomJob message ``submit`` creates."""
        fields = self.job_fields(info, entrypoint_command, environment)
        from google.cloud.aiplatform_v1 import AcceleratorType, CustomJob, Scheduling

        for pool in fields["job_spec"]["worker_pool_specs"]:
            machine = pool["machine_spec"]
            if "accelerator_type" in machine:
                machine["accelerator_type"] = getattr(AcceleratorType, machine["accelerator_type"])
        scheduling = fields["job_spec"].get("scheduling", {})
        if "strategy" in scheduling:
            scheduling["strategy"] = getattr(Scheduling.Strategy, scheduling["strategy"])
        return CustomJob(fields)

    def _handle(self, job: CustomJob) -> JobHandle:
        return JobHandle(
            flavor="vertex",
            job_id=job.name,
            name=job.display_name,
            extra={
                "project": self.config.project,
                "location": self.config.location,
                "job_number": job.name.rsplit("/", 1)[-1],
                # Bounds the list call that asks about many jobs at once (get_statuses).
                **({"create_time": _timestamp(job.create_time)} if job.create_time else {}),
                # Replicas across the pools: the logs name each node when there are several.
                "nodes": str(sum(pool.replica_count for pool in job.job_spec.worker_pool_specs)),
            },
        )

    # -- primitives --------------------------------------------------------------------------

    def submit(
        self, info: StepRunInfo, entrypoint_command: list[str], environment: dict[str, str]
    ) -> JobHandle:
        """Create the CustomJob with one call, never repeated here.

        A 429, 5xx or lost connection raises :class:`JobNotCreated`, which the launch retries
        only after ``find_job`` found no job (the create may have gone through before its
        answer was lost); any other refusal is a :class:`ConfigError`.
        """
        job = self.build_job(info, entrypoint_command, environment)
        from google.api_core import exceptions

        try:
            created = self.client.create_custom_job(
                parent=self.config.parent,
                custom_job=job,
                retry=None,  # no transport retry: a create is never repeated blindly
                timeout=self.call_timeout,
            )
        except Exception as error:
            if _is_transient(error):
                raise JobNotCreated(error) from error
            if isinstance(error, exceptions.GoogleAPICallError):
                raise ConfigError(
                    f"Vertex AI refused the job: {error.message}", field=None
                ) from None
            raise
        return self._handle(created)

    def get_status(self, handle: JobHandle) -> JobStatus:
        from google.api_core import exceptions

        try:
            job = self.client.get_custom_job(
                name=handle.job_id, retry=self._retry(), timeout=self.call_timeout
            )
        except exceptions.NotFound:
            return JobStatus(
                state=JobState.FAILED,
                provider_state="NOT_FOUND",
                message=f"Vertex AI has no job {handle.job_id}",
                failure_kind=FailureKind.INFRASTRUCTURE,
            )
        return _status_of(job)

    def get_statuses(self, handles: Sequence[JobHandle]) -> dict[str, JobStatus]:
        """The statuses of many jobs from one ``customJobs.list``, a page per 100 jobs.

        Vertex filters jobs neither by name nor by update time, so the call asks for
        steplift's jobs created since the oldest one asked about
        (``labels.steplift-key:* AND create_time>="..."``) and stops paging once it has seen
        every job asked about. Other jobs created in that window only add pages, and at most
        one page per job asked about is read: a round never costs more list calls than asking
        each job alone would. Jobs it did not see (another location, a handle without its
        creation time, past the last page) are left out and asked about alone; one job alone
        is asked about with ``get``.
        """
        if len(handles) == 1:
            return {handles[0].job_id: self.get_status(handles[0])}
        prefix = f"{self.config.parent}/customJobs/"
        created = {
            handle.job_id: handle.extra["create_time"]
            for handle in handles
            if handle.job_id.startswith(prefix) and handle.extra.get("create_time")
        }
        if not created:
            return {}
        from google.cloud.aiplatform_v1 import ListCustomJobsRequest

        request = ListCustomJobsRequest(
            parent=self.config.parent,
            # Fixed-width timestamps (see _timestamp): the smallest string is the oldest.
            filter=f'labels.{KEY_LABEL}:* AND create_time>="{min(created.values())}"',
            page_size=self.status_page_size,
        )
        pager = self.client.list_custom_jobs(
            request=request, retry=self._retry(), timeout=self.call_timeout
        )
        statuses: dict[str, JobStatus] = {}
        for number, page in enumerate(pager.pages, start=1):
            for job in page.custom_jobs:
                if job.name in created:
                    statuses[job.name] = _status_of(job)
            if len(statuses) == len(created) or number >= len(created):
                break
        return statuses

    def cancel(self, handle: JobHandle) -> None:
        from google.api_core import exceptions

        try:
            self.client.cancel_custom_job(
                name=handle.job_id, retry=self._retry(), timeout=self.call_timeout
            )
        except exceptions.NotFound:
            return  # gone: nothing left to stop
        except exceptions.BadRequest as error:
            # FAILED_PRECONDITION (HTTP 400 over REST): the job has already ended.
            if rpc_status(error) != "FAILED_PRECONDITION":
                raise

    def find_job(self, info: StepRunInfo) -> JobHandle | None:
        from google.cloud.aiplatform_v1 import ListCustomJobsRequest

        request = ListCustomJobsRequest(
            parent=self.config.parent,
            filter=f'labels.{KEY_LABEL}="{attempt_label(info)}"',
            page_size=100,
        )
        jobs = list(
            self.client.list_custom_jobs(
                request=request, retry=self._retry(), timeout=self.call_timeout
            )
        )
        if not jobs:
            return None
        # Two launchers racing may both have created one: everybody adopts the first.
        first = min(jobs, key=lambda job: (job.create_time, job.name))
        return self._handle(first)

    def read_logs(self, handle: JobHandle, cursor: str | None) -> LogChunk:
        number = handle.extra.get("job_number") or handle.job_id.rsplit("/", 1)[-1]
        project = handle.extra.get("project", self.config.project)
        endpoint = self.config.logging_endpoint or DEFAULT_LOGGING_ENDPOINT
        nodes = int(handle.extra.get("nodes") or 1)
        return read_job_logs(self._post_json, endpoint, project, number, cursor, nodes=nodes)


def _status_of(job: CustomJob) -> JobStatus:
    error = job.error
    return job_status(int(job.state), int(error.code), str(error.message))


def _timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with exactly six fractional digits, so that strings sort as times
    (nanoseconds are cut: the value is only ever a lower bound of a filter)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
