"""The ``sagemaker`` step operator: one training job per step attempt, through boto3.

A step on ``Resources(nodes=N)`` is one training job with ``InstanceCount = N``: SageMaker
starts the same container on hosts ``algo-1`` .. ``algo-N`` and describes the cluster to each
in ``/opt/ml/input/config/resourceconfig.json``, which steplift's entrypoint reads (node rank =
the host's place among the sorted hosts, ``algo-1`` the rendezvous master). Each host logs to
its own CloudWatch stream; :meth:`SageMakerStepOperator.read_logs` puts ``[node R] `` before
the lines of host ``algo-<R+1>`` when the job has several hosts.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from steplift.cost import JobUsage, PriceKey
from steplift.errors import ConfigError, StepFailed
from steplift.launch.paging import collect_statuses
from steplift.launch.policy import LaunchPolicy
from steplift.models import JobHandle, JobStatus, LogChunk, StepRunInfo
from steplift.operator import StepOperator
from steplift.polling import DEFAULT_CLOCK, DEFAULT_SLEEP, Clock, Sleep
from steplift.states import FailureKind, JobState
from steplift.store import ArtifactStore
from steplift_sagemaker import logs, requests
from steplift_sagemaker.clients import is_transient_error, make_client
from steplift_sagemaker.config import SageMakerStepOperatorConfig
from steplift_sagemaker.logs import INSTANCE_COUNT
from steplift_sagemaker.requests import CHECKPOINT_LOCAL_PATH
from steplift_sagemaker.resources import gpus_of_instance_type, step_instance_type
from steplift_sagemaker.status import status_from_description, status_from_summary
from steplift_sagemaker.store import S3ArtifactStore

LIST_PAGE_SIZE = 100  # ListTrainingJobs' largest MaxResults
CREATION_SLACK = 900.0
"""Seconds a job's CreationTime may precede our clock at submit: AWS refuses a request signed
more than 5 minutes (S3: 15) off its own clock, so a created job is never older than this."""


class SageMakerStepOperator(StepOperator[SageMakerStepOperatorConfig]):
    """Runs each step attempt as a SageMaker training job (``InstanceCount`` = its nodes).

    Concurrent launches of one operator share their status polls: one ListTrainingJobs round
    (a page per 100 jobs) answers every job in progress or completed, and a job that failed or
    stopped is described once on its own, which also gives its FailureReason.
    """

    multi_node = True
    launch_policy = LaunchPolicy(batched_status=True)

    def __init__(
        self,
        config: SageMakerStepOperatorConfig,
        *,
        name: str = "default",
        clock: Clock = DEFAULT_CLOCK,
        sleep: Sleep = DEFAULT_SLEEP,
        policy: LaunchPolicy | None = None,
    ) -> None:
        super().__init__(config, name=name, clock=clock, sleep=sleep, policy=policy)
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._store = S3ArtifactStore(lambda: self.client("s3"))
        # Job name -> epoch seconds at or before its CreationTime: bounds the list's pages.
        self._created_after: dict[str, float] = {}
        self._created_lock = threading.Lock()

    def client(self, service: str) -> Any:
        """The boto3 client of ``service`` (sagemaker, s3, logs), created once, on first use."""
        with self._clients_lock:  # concurrent launches share one operator
            if service not in self._clients:
                self._clients[service] = make_client(service, self.config)
            return self._clients[service]

    @property
    def flavor(self) -> str:
        return "sagemaker"

    def portable_config(self) -> dict[str, Any]:
        # The run index is plain JSON on disk: keys stay out of it; `steplift status` and
        # friends then find credentials the usual boto3 way (profile, environment, role).
        config = super().portable_config()
        config.pop("aws_access_key_id", None)
        config.pop("aws_secret_access_key", None)
        return config

    def warm_up(self) -> None:
        for service in ("sagemaker", "s3", "logs"):
            self.client(service)

    def is_transient_error(self, error: Exception) -> bool:
        return is_transient_error(error)

    def checkpoint_dir(self, info: StepRunInfo) -> str | None:
        # CheckpointConfig syncs this folder with S3, so it survives attempts and restarts.
        return CHECKPOINT_LOCAL_PATH

    @property
    def artifact_store(self) -> ArtifactStore:
        return self._store

    @property
    def artifact_root(self) -> str:
        return self.config.bucket

    # -- the step's shape (requests.build_request turns it into the request) ----------------

    def instance_type(self, info: StepRunInfo) -> str:
        """The step's GPU request, else the config's instance_type, else its gpu, else CPU."""
        return step_instance_type(self.config, info)

    def gpus_per_node(self, info: StepRunInfo) -> int:
        """The GPUs of the step's instance type (its own request, or the config's type)."""
        return gpus_of_instance_type(self.instance_type(info))

    def check_step(self, info: StepRunInfo) -> None:
        """Refuse, before any call, a GPU request no training instance type serves and a
        multi-node step whose node count the config's ``instance_count`` contradicts.

        SageMaker itself sets no maximum on ``InstanceCount`` (botocore's model: minimum 0, no
        maximum); how many instances an account may run is a per-instance-type service quota,
        which only CreateTrainingJob can tell (ResourceLimitExceeded, reported as a quota
        failure), so no node count is refused here.
        """
        super().check_step(info)
        self.instance_type(info)
        nodes, configured = info.resources.nodes, self.config.instance_count
        if configured not in (1, nodes):
            # Every instance runs the step's entrypoint, which would refuse a cluster of
            # another size than the step asked for: a paid job that cannot run.
            raise ConfigError(
                f"the step asks for {nodes} node(s) but the operator's instance_count is "
                f"{configured}; a step gets one instance per node, so leave instance_count at "
                f"1 and ask for nodes={configured} on the step (--nodes on the CLI)",
                field="instance_count",
                value=configured,
                has_value=True,
            )

    def job_name(self, info: StepRunInfo) -> str:
        """The deterministic training-job name of a step attempt."""
        return requests.job_name(info)

    def describe_request(
        self, info: StepRunInfo, entrypoint_command: list[str], environment: dict[str, str]
    ) -> dict[str, Any]:
        """The CreateTrainingJob request ``submit`` would send (no call)."""
        return requests.build_request(self.config, info, entrypoint_command, environment)

    def price_key(self, info: StepRunInfo) -> PriceKey:
        """One training instance of the step's type per node, in the config's region."""
        spot = info.resources.use_spot(self.config.spot)
        return PriceKey(
            "steplift_sagemaker", self.config.region, ((self.instance_type(info), 1),), spot
        )

    # -- primitives -------------------------------------------------------------------------

    def _handle(self, name: str, arn: str | None = None, instance_count: int = 1) -> JobHandle:
        extra = {"region": self.config.region, **({"arn": arn} if arn else {})}
        if instance_count > 1:  # read_logs then prefixes every host's lines from the start
            extra[INSTANCE_COUNT] = str(instance_count)
        return JobHandle(flavor="sagemaker", job_id=name, name=name, extra=extra)

    def submit(
        self, info: StepRunInfo, entrypoint_command: list[str], environment: dict[str, str]
    ) -> JobHandle:
        request = requests.build_request(self.config, info, entrypoint_command, environment)
        count = int(request["ResourceConfig"]["InstanceCount"])
        sagemaker = self.client("sagemaker")
        asked = time.time()  # wall time on purpose: compared with the service's CreationTime
        # botocore retries throttling and 5xx on this create; the name is deterministic, so a
        # retry whose first try went through answers ResourceInUse, and we adopt that job.
        try:
            response = sagemaker.create_training_job(**request)
        except sagemaker.exceptions.ResourceInUse:
            # Created by an earlier try, perhaps long ago: its CreationTime is learnt later.
            return self._handle(request["TrainingJobName"], instance_count=count)
        except sagemaker.exceptions.ResourceLimitExceeded as error:
            message = error.response.get("Error", {}).get("Message", str(error))
            raise StepFailed(
                f"SageMaker refused the job: {message}",
                failure_kind=FailureKind.QUOTA,
                provider_state="ResourceLimitExceeded",
            ) from None
        self._note_created(request["TrainingJobName"], asked - CREATION_SLACK)
        return self._handle(request["TrainingJobName"], response.get("TrainingJobArn"), count)

    def _describe(self, name: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            description: dict[str, Any] = self.client("sagemaker").describe_training_job(
                TrainingJobName=name
            )
        except ClientError as error:
            details = error.response.get("Error", {})
            if details.get("Code") == "ValidationException" and "not found" in str(
                details.get("Message", "")
            ):
                return None
            raise
        return description

    def find_job(self, info: StepRunInfo) -> JobHandle | None:
        name = self.job_name(info)
        description = self._describe(name)
        if description is None:
            return None
        self._note_created(name, _epoch(description.get("CreationTime")))
        count = int((description.get("ResourceConfig") or {}).get("InstanceCount") or 1)
        return self._handle(name, description.get("TrainingJobArn"), count)

    def get_status(self, handle: JobHandle) -> JobStatus:
        description = self._describe(handle.job_id)
        if description is None:
            return JobStatus(
                state=JobState.FAILED,
                provider_state="NotFound",
                message=f"training job {handle.job_id} does not exist",
                failure_kind=FailureKind.INFRASTRUCTURE,
            )
        status = status_from_description(description)
        if status.state.is_terminal:
            with self._created_lock:
                self._created_after.pop(handle.job_id, None)
        else:
            self._note_created(handle.job_id, _epoch(description.get("CreationTime")))
        return status

    def job_usage(self, handle: JobHandle) -> JobUsage | None:
        """DescribeTrainingJob's BillableTimeInSeconds (per instance, after the managed-spot
        saving), its InstanceCount, and its training start and end times."""
        description = self._describe(handle.job_id)
        if description is None:
            return None
        billable = description.get("BillableTimeInSeconds")
        count = (description.get("ResourceConfig") or {}).get("InstanceCount")
        return JobUsage(
            started=_epoch(description.get("TrainingStartTime")),
            ended=_epoch(description.get("TrainingEndTime")),
            billable_seconds=None if billable is None else float(billable),
            instances=None if count is None else int(count),
            source="SageMaker",
        )

    def get_statuses(self, handles: Sequence[JobHandle]) -> dict[str, JobStatus]:
        """The jobs among ``handles`` that ListTrainingJobs shows, by job id.

        One call per page of 100, filtered to jobs whose name contains what all the handles'
        names begin with, created since the oldest of them once every job's CreationTime is
        bounded (in progress only until then, to keep the pages few). In progress and
        completed jobs are answered from the summaries; failed and stopped ones are left out:
        each is then described on its own, which gives its FailureReason. Paging stops once
        every job asked about was seen.
        """
        wanted = {handle.job_id.lower(): handle.job_id for handle in handles}
        if not wanted:
            return {}
        filters: dict[str, Any] = {}
        prefix = os.path.commonprefix([handle.job_id for handle in handles])
        if prefix:
            filters["NameContains"] = prefix
        oldest = self._oldest_creation(list(wanted.values()))
        if oldest is not None:
            filters["CreationTimeAfter"] = oldest - 1.0  # the filter is strict; ms round off
        else:
            filters["StatusEquals"] = "InProgress"
        paginator = self.client("sagemaker").get_paginator("list_training_jobs")
        pages = paginator.paginate(**filters, PaginationConfig={"PageSize": LIST_PAGE_SIZE})

        def status_of(summary: dict[str, Any]) -> JobStatus | None:
            status = status_from_summary(summary)
            if status is not None:
                name = str(summary["TrainingJobName"])
                self._note_created(wanted[name.lower()], _epoch(summary.get("CreationTime")))
            return status

        return collect_statuses(
            wanted.values(),
            (page.get("TrainingJobSummaries", []) for page in pages),
            lambda summary: str(summary.get("TrainingJobName", "")),
            status_of,
        )

    def _note_created(self, job_id: str, created: float | None) -> None:
        """Remember a bound at or before the job's CreationTime (the latest one known)."""
        if created is None:
            return
        with self._created_lock:
            self._created_after[job_id] = max(created, self._created_after.get(job_id, created))

    def _oldest_creation(self, job_ids: list[str]) -> float | None:
        """The earliest CreationTime bound of the jobs; None if one of them has none yet."""
        with self._created_lock:
            bounds = [self._created_after.get(job_id) for job_id in job_ids]
        if any(bound is None for bound in bounds):
            return None
        return min(bound for bound in bounds if bound is not None)

    def cancel(self, handle: JobHandle) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client("sagemaker").stop_training_job(TrainingJobName=handle.job_id)
        except ClientError as error:
            # Stopping a job that already ended is refused; there is nothing left to stop.
            if error.response.get("Error", {}).get("Code") != "ValidationException":
                raise

    def read_logs(self, handle: JobHandle, cursor: str | None) -> LogChunk:
        """CloudWatch Logs streams ``<job>/algo-K-<epoch>``; ``[node R] `` before every line of
        a job of several hosts (see :mod:`steplift_sagemaker.logs`)."""
        return logs.read_logs(self.client("logs"), handle, cursor)


def _epoch(value: Any) -> float | None:
    """A boto3 timestamp (a datetime) as epoch seconds."""
    timestamp = getattr(value, "timestamp", None)
    return float(timestamp()) if callable(timestamp) else None
