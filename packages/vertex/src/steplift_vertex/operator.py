"""The ``vertex`` step operator: each step attempt is one Vertex AI CustomJob.

The primitives only; each delegates to the module whose job it is: the CustomJob to create
(:mod:`~steplift_vertex.requests`), the clients and which errors are transient
(:mod:`~steplift_vertex.clients`), states (:mod:`~steplift_vertex.status`), logs
(:mod:`~steplift_vertex.logs`) and machines (:mod:`~steplift_vertex.resources`).

Vertex assigns job ids itself, so the job carries a label derived from the step attempt and
``find_job`` lists by that label: a relaunch adopts the job instead of creating a second one,
and a create that failed in transit is only retried (by the shared launch) after checking
that it did not go through.

The statuses of the jobs that the launches of one process are waiting for come from one
``customJobs.list`` (a page per 100 jobs) instead of one ``get`` per job: see
:meth:`VertexStepOperator.get_statuses`.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from datetime import UTC
from typing import TYPE_CHECKING, Any, ClassVar

from steplift.cost import JobUsage, PriceKey
from steplift.errors import ConfigError
from steplift.launch.paging import collect_statuses
from steplift.launch.policy import LaunchPolicy
from steplift.models import JobHandle, JobStatus, LogChunk, StepRunInfo
from steplift.operator import StepOperator
from steplift.polling import DEFAULT_CLOCK, DEFAULT_SLEEP, Clock, Sleep
from steplift.states import FailureKind, JobState
from steplift.store import ArtifactStore
from steplift_vertex.clients import (
    JobNotCreated,
    RetrySettings,
    VertexClients,
    is_transient_error,
    read_retry,
    rpc_status,
)
from steplift_vertex.config import VertexStepOperatorConfig
from steplift_vertex.logs import DEFAULT_LOGGING_ENDPOINT, read_job_logs
from steplift_vertex.requests import KEY_LABEL, attempt_label, build_request, check_request
from steplift_vertex.resources import step_machine
from steplift_vertex.secrets import CREDENTIALS_ENV, ENDPOINT_ENV
from steplift_vertex.status import status_from_job
from steplift_vertex.store import GCSArtifactStore

if TYPE_CHECKING:
    from datetime import datetime

    from google.cloud.aiplatform_v1 import CustomJob, JobServiceClient


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
        self._clients = VertexClients(config)

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

    def gpus_per_node(self, info: StepRunInfo) -> int:
        """The accelerators of each replica's machine (the step's, else the config's)."""
        return step_machine(self.config, info).accelerator_count

    def describe_request(
        self, info: StepRunInfo, entrypoint_command: list[str], environment: dict[str, str]
    ) -> dict[str, Any]:
        """The CustomJob ``submit`` would create (no call)."""
        return build_request(self.config, info, entrypoint_command, environment)

    def price_key(self, info: StepRunInfo) -> PriceKey:
        """Each replica's machine plus its accelerators (Vertex prices them apart), in the
        config's location."""
        machine = step_machine(self.config, info)
        parts = [(machine.machine_type, 1)]
        if machine.accelerator_type:
            parts.append((machine.accelerator_type, machine.accelerator_count))
        spot = info.resources.use_spot(self.config.spot)
        return PriceKey("steplift_vertex", self.config.location, tuple(parts), spot)

    def check_step(self, info: StepRunInfo) -> None:
        """Refuse, before any call, a step Vertex AI would refuse or could not run (see
        :func:`steplift_vertex.requests.check_request`)."""
        super().check_step(info)
        check_request(self.config, info)

    def warm_up(self) -> None:
        self.client  # noqa: B018 - imports aiplatform_v1 and builds the REST client

    def is_transient_error(self, error: Exception) -> bool:
        """429, 5xx and connection errors (also once the SDK's own retries gave up), and a
        create that failed with one of them (:class:`JobNotCreated`)."""
        return isinstance(error, JobNotCreated) or is_transient_error(error)

    @property
    def client(self) -> JobServiceClient:
        """The aiplatform_v1 JobServiceClient (REST), created on first use."""
        return self._clients.jobs

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
        request = build_request(self.config, info, entrypoint_command, environment)
        from google.api_core import exceptions
        from google.cloud.aiplatform_v1 import CustomJob

        job = CustomJob.from_json(json.dumps(request))
        try:
            created = self.client.create_custom_job(
                parent=self.config.parent,
                custom_job=job,
                retry=None,  # no transport retry: a create is never repeated blindly
                timeout=self.call_timeout,
            )
        except Exception as error:
            if is_transient_error(error):
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
                name=handle.job_id,
                retry=read_retry(self.transport_retry),
                timeout=self.call_timeout,
            )
        except exceptions.NotFound:
            return JobStatus(
                state=JobState.FAILED,
                provider_state="NOT_FOUND",
                message=f"Vertex AI has no job {handle.job_id}",
                failure_kind=FailureKind.INFRASTRUCTURE,
            )
        return status_from_job(job)

    def job_usage(self, handle: JobHandle) -> JobUsage | None:
        """The CustomJob's ``startTime`` and ``endTime`` (Vertex reports no billable time)."""
        job = self.client.get_custom_job(
            name=handle.job_id,
            retry=read_retry(self.transport_retry),
            timeout=self.call_timeout,
        )
        return JobUsage(
            started=_epoch(getattr(job, "start_time", None)),
            ended=_epoch(getattr(job, "end_time", None)),
            source="Vertex AI",
        )

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
            request=request, retry=read_retry(self.transport_retry), timeout=self.call_timeout
        )
        # At most one page per job asked about (the bound counts every job asked about, not
        # only those still unseen: a page that shows some of them may precede the rest).
        pages = itertools.islice((page.custom_jobs for page in pager.pages), len(created))
        return collect_statuses(created, pages, lambda job: job.name, status_from_job)

    def cancel(self, handle: JobHandle) -> None:
        from google.api_core import exceptions

        try:
            self.client.cancel_custom_job(
                name=handle.job_id,
                retry=read_retry(self.transport_retry),
                timeout=self.call_timeout,
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
                request=request,
                retry=read_retry(self.transport_retry),
                timeout=self.call_timeout,
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

    def _post_json(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._clients.post_json(url, body, timeout=self.call_timeout)


def _timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with exactly six fractional digits, so that strings sort as times
    (nanoseconds are cut: the value is only ever a lower bound of a filter)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _epoch(value: Any) -> float | None:
    """A proto timestamp (a datetime; None or the epoch itself when unset) as epoch seconds."""
    timestamp = getattr(value, "timestamp", None)
    seconds = float(timestamp()) if callable(timestamp) else None
    return seconds if seconds else None
