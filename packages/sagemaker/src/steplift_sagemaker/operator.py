"""The ``sagemaker`` step operator: one training job per step attempt, through boto3.

A step on ``Resources(nodes=N)`` is one training job with ``InstanceCount = N``: SageMaker
starts the same container on hosts ``algo-1`` .. ``algo-N`` and describes the cluster to each
in ``/opt/ml/input/config/resourceconfig.json``, which steplift's entrypoint reads (node rank =
the host's place among the sorted hosts, ``algo-1`` the rendezvous master). Each host logs to
its own CloudWatch stream; :meth:`SageMakerStepOperator.read_logs` puts ``[node R] `` before
the lines of host ``algo-<R+1>`` when the job has several hosts.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from steplift.errors import ConfigError, StepFailed
from steplift.launch.policy import LaunchPolicy
from steplift.models import JobHandle, JobStatus, LogChunk, StepRunInfo
from steplift.operator import StepOperator
from steplift.polling import DEFAULT_CLOCK, DEFAULT_SLEEP, Clock, Sleep
from steplift.states import FailureKind, JobState
from steplift.store import ArtifactStore, join_uri
from steplift_sagemaker.clients import make_client
from steplift_sagemaker.config import SageMakerStepOperatorConfig, check_environment
from steplift_sagemaker.resources import (
    DEFAULT_CPU_INSTANCE_TYPE,
    check_instance_type,
    gpus_of_instance_type,
    instance_type_for_gpu,
)
from steplift_sagemaker.store import S3ArtifactStore

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
INSTANCE_COUNT = "instance_count"
"""Key of a multi-host job's host count in its handle's ``extra``."""
_STREAM_HOST = re.compile(r"^algo-(\d+)$")
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
DEFAULT_MAX_RUNTIME = 86400  # what SageMaker itself assumes when none is given
MAX_CONTAINER_ITEM = 256
MAX_CONTAINER_ITEMS = 100
TRANSIENT_CODES = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
}

LIST_PAGE_SIZE = 100  # ListTrainingJobs' largest MaxResults
CREATION_SLACK = 900.0
"""Seconds a job's CreationTime may precede our clock at submit: AWS refuses a request signed
more than 5 minutes (S3: 15) off its own clock, so a created job is never older than this."""

# SecondaryStatus values during which the job has not started the user's code yet.
_NOT_STARTED = {
    "Starting",
    "Pending",
    "LaunchingMLInstances",
    "PreparingTrainingStack",
    "Downloading",
    "DownloadingTrainingImage",
    "Interrupted",
    "Restarting",
}


def failure_kind(reason: str) -> FailureKind:
    """Classify a SageMaker FailureReason."""
    text = reason.lower()
    if "resourcelimitexceeded" in text or "service limit" in text:
        return FailureKind.QUOTA
    if "capacityerror" in text or "insufficientcapacity" in text or "insufficient capacity" in text:
        return FailureKind.CAPACITY
    if "spot" in text and "interrupt" in text:
        return FailureKind.PREEMPTED
    if "algorithmerror" in text:
        return FailureKind.USER_CODE
    if "cannotstartcontainer" in text or ("clienterror" in text and "image" in text):
        return FailureKind.IMAGE
    return FailureKind.INFRASTRUCTURE


def status_from_description(description: dict[str, Any]) -> JobStatus:
    """DescribeTrainingJob -> the normalised status."""
    primary = str(description["TrainingJobStatus"])
    secondary = str(description.get("SecondaryStatus", ""))
    provider_state = f"{primary}/{secondary}" if secondary else primary
    reason = str(description.get("FailureReason", ""))
    if primary == "InProgress":
        state = JobState.PENDING if secondary in _NOT_STARTED else JobState.RUNNING
        return JobStatus(state=state, provider_state=provider_state)
    if primary == "Completed":
        return JobStatus(state=JobState.SUCCEEDED, provider_state=provider_state)
    if primary == "Stopping":
        return JobStatus(state=JobState.CANCELLING, provider_state=provider_state)
    if primary == "Stopped":
        if secondary == "MaxRuntimeExceeded":
            return JobStatus(
                state=JobState.FAILED,
                provider_state=provider_state,
                message="MaxRuntimeInSeconds exceeded",
                failure_kind=FailureKind.TIMEOUT,
            )
        if secondary == "MaxWaitTimeExceeded":
            return JobStatus(
                state=JobState.FAILED,
                provider_state=provider_state,
                message="no spot capacity within MaxWaitTimeInSeconds",
                failure_kind=FailureKind.CAPACITY,
            )
        return JobStatus(state=JobState.CANCELLED, provider_state=provider_state, message=reason)
    return JobStatus(
        state=JobState.FAILED,
        provider_state=provider_state,
        message=reason,
        failure_kind=failure_kind(reason),
    )


def status_from_summary(summary: Mapping[str, Any]) -> JobStatus | None:
    """A ListTrainingJobs summary -> the status a describe would give, or None if it cannot
    tell as much: an ended job's describe adds FailureReason, and without SecondaryStatus a
    waiting job cannot be told from a running one. A completed job needs nothing more."""
    if summary.get("TrainingJobStatus") not in ("InProgress", "Stopping", "Completed"):
        return None
    if not summary.get("SecondaryStatus"):
        return None
    return status_from_description(dict(summary))


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
        """Throttling, 5xx and lost connections that outlasted botocore's own retries."""
        from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

        if isinstance(error, ConnectionError | HTTPClientError):
            return True
        if isinstance(error, ClientError):
            details = error.response.get("Error", {})
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            return details.get("Code") in TRANSIENT_CODES or int(status) >= 500
        return False

    def checkpoint_dir(self, info: StepRunInfo) -> str | None:
        # CheckpointConfig syncs this folder with S3, so it survives attempts and restarts.
        return CHECKPOINT_LOCAL_PATH

    @property
    def artifact_store(self) -> ArtifactStore:
        return self._store

    @property
    def artifact_root(self) -> str:
        return self.config.bucket

    # -- request building (no API call) -----------------------------------------------------

    def instance_type(self, info: StepRunInfo) -> str:
        """The step's GPU request, else the config's instance_type, else its gpu, else CPU."""
        if info.resources.gpu:
            return instance_type_for_gpu(info.resources.gpu, field="resources.gpu")
        if self.config.instance_type:
            return check_instance_type(self.config.instance_type)
        if self.config.gpu:
            return instance_type_for_gpu(self.config.gpu)
        return DEFAULT_CPU_INSTANCE_TYPE

    def instance_count(self, info: StepRunInfo) -> int:
        """The job's ``InstanceCount``: one instance per node of the step."""
        return info.resources.nodes

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
        return info.job_name(max_length=63)

    def create_request(
        self, info: StepRunInfo, entrypoint_command: list[str], environment: dict[str, str]
    ) -> dict[str, Any]:
        """The CreateTrainingJob request; ConfigError for anything SageMaker would refuse."""
        config = self.config
        entrypoint, arguments = entrypoint_command[:3], entrypoint_command[3:]
        for field, items in (("entrypoint", entrypoint), ("arguments", arguments)):
            if len(items) > MAX_CONTAINER_ITEMS:
                raise ConfigError(f"SageMaker allows {MAX_CONTAINER_ITEMS} container {field}")
            for item in items:
                if len(item) > MAX_CONTAINER_ITEM:
                    raise ConfigError(
                        f"container {field} items are limited to {MAX_CONTAINER_ITEM} characters; "
                        "use shorter bucket, pipeline, run or step names",
                        field="bucket",
                        value=item,
                        has_value=True,
                    )
        try:
            check_environment(environment)
        except ValueError as error:
            raise ConfigError(str(error), field="environment") from None
        max_runtime = int(info.max_runtime or config.max_runtime or DEFAULT_MAX_RUNTIME)
        stopping: dict[str, int] = {"MaxRuntimeInSeconds": max(1, max_runtime)}
        spot = info.resources.use_spot(config.spot)
        if spot:
            stopping["MaxWaitTimeInSeconds"] = config.max_wait or max_runtime + 3600
        step_folder = info.artifact_uri.rsplit("/", 1)[0]
        tags = {
            **config.tags,
            **info.tags,
            "steplift:pipeline": info.pipeline,
            "steplift:run": info.run,
            "steplift:step": info.step,
            "steplift:attempt": str(info.attempt),
        }
        resource_config: dict[str, Any] = {
            "InstanceType": self.instance_type(info),
            "InstanceCount": self.instance_count(info),
            "VolumeSizeInGB": info.resources.disk_gb or config.volume_size_gb,
        }
        if config.keep_alive is not None:
            resource_config["KeepAlivePeriodInSeconds"] = config.keep_alive
        if config.kms_key:
            resource_config["VolumeKmsKeyId"] = config.kms_key
        request: dict[str, Any] = {
            "TrainingJobName": self.job_name(info),
            "RoleArn": config.role_arn,
            "AlgorithmSpecification": {
                "TrainingImage": info.image or config.image,
                "TrainingInputMode": "File",
                "ContainerEntrypoint": entrypoint,
                **({"ContainerArguments": arguments} if arguments else {}),
            },
            "OutputDataConfig": {
                "S3OutputPath": join_uri(info.artifact_uri, "output"),
                **({"KmsKeyId": config.kms_key} if config.kms_key else {}),
            },
            "ResourceConfig": resource_config,
            "StoppingCondition": stopping,
            "EnableManagedSpotTraining": spot,
            "Environment": environment,
            "Tags": [{"Key": key, "Value": value} for key, value in tags.items()],
        }
        if self.checkpoint_dir(info):
            request["CheckpointConfig"] = {
                "S3Uri": config.checkpoint_s3_uri or join_uri(step_folder, "checkpoints"),
                "LocalPath": CHECKPOINT_LOCAL_PATH,
            }
        if config.subnets:
            request["VpcConfig"] = {
                "Subnets": config.subnets,
                "SecurityGroupIds": config.security_group_ids,
            }
        return request

    # -- primitives -------------------------------------------------------------------------

    def _handle(self, name: str, arn: str | None = None, instance_count: int = 1) -> JobHandle:
        extra = {"region": self.config.region, **({"arn": arn} if arn else {})}
        if instance_count > 1:  # read_logs then prefixes every host's lines from the start
            extra[INSTANCE_COUNT] = str(instance_count)
        return JobHandle(flavor="sagemaker", job_id=name, name=name, extra=extra)

    def submit(
        self, info: StepRunInfo, entrypoint_command: list[str], environment: dict[str, str]
    ) -> JobHandle:
        request = self.create_request(info, entrypoint_command, environment)
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

    def get_statuses(self, handles: Sequence[JobHandle]) -> dict[str, JobStatus]:
        """The jobs among ``handles`` that ListTrainingJobs shows, by job id.

        One call per page of 100, filtered to jobs whose name contains what all the handles'
        names begin with, created since the oldest of them once every job's CreationTime is
        bounded (in progress only until then, to keep the pages few). In progress and
        completed jobs are answered from the summaries; failed and stopped ones are left out:
        each is then described on its own, which gives its FailureReason.
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
        statuses: dict[str, JobStatus] = {}
        paginator = self.client("sagemaker").get_paginator("list_training_jobs")
        pages = paginator.paginate(**filters, PaginationConfig={"PageSize": LIST_PAGE_SIZE})
        for page in pages:
            for summary in page.get("TrainingJobSummaries", []):
                job_id = wanted.get(str(summary.get("TrainingJobName", "")).lower())
                if job_id is None or job_id in statuses:
                    continue
                status = status_from_summary(summary)
                if status is not None:
                    statuses[job_id] = status
                    self._note_created(job_id, _epoch(summary.get("CreationTime")))
            if len(statuses) == len(wanted):
                break  # every job answered: no need for the remaining pages
        return statuses

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
        """CloudWatch Logs streams ``<job>/algo-K-<epoch>``, each followed by its forward token.

        In a job of several hosts every line of host ``algo-K`` starts with ``[node K-1] ``
        (steplift's node rank: the hosts sorted, ``algo-1`` first); a one-host job's lines,
        even over the new streams of a spot restart, are left as they are.
        """
        logs = self.client("logs")
        tokens: dict[str, str] = json.loads(cursor) if cursor else {}
        try:
            streams = logs.describe_log_streams(
                logGroupName=LOG_GROUP, logStreamNamePrefix=f"{handle.job_id}/"
            ).get("logStreams", [])
        except logs.exceptions.ResourceNotFoundException:
            return LogChunk([], cursor)
        hosts = {name: _stream_host(name) for name in (s["logStreamName"] for s in streams)}
        names = sorted(hosts, key=lambda name: (_host_order(hosts[name]), name))
        several = int(handle.extra.get(INSTANCE_COUNT, "1")) > 1 or len(set(hosts.values())) > 1
        lines: list[str] = []
        for name in names:
            prefix = f"[{_node_label(hosts[name])}] " if several else ""
            for _ in range(100):  # bounded: 100 pages of up to 10,000 events per poll
                request: dict[str, Any] = {
                    "logGroupName": LOG_GROUP,
                    "logStreamName": name,
                    "startFromHead": True,
                }
                if name in tokens:
                    request["nextToken"] = tokens[name]
                page = logs.get_log_events(**request)
                events = page.get("events", [])
                lines += [prefix + str(event["message"]).rstrip("\n") for event in events]
                token = page.get("nextForwardToken")
                unchanged = token == tokens.get(name)
                if token:
                    tokens[name] = token
                if not events or unchanged:
                    break
        return LogChunk(lines, json.dumps(tokens, sort_keys=True))


def _epoch(value: Any) -> float | None:
    """A boto3 timestamp (a datetime) as epoch seconds."""
    timestamp = getattr(value, "timestamp", None)
    return float(timestamp()) if callable(timestamp) else None


def _stream_host(stream: str) -> str:
    """The host of a stream ``<job>/<host>-<epoch>``."""
    return stream.split("/", 1)[-1].rsplit("-", 1)[0]


def _host_order(host: str) -> tuple[int, str]:
    match = _STREAM_HOST.match(host)
    return (int(match.group(1)), host) if match else (1 << 30, host)


def _node_label(host: str) -> str:
    """``node R`` for host ``algo-<R+1>``; any other host keeps its own name."""
    match = _STREAM_HOST.match(host)
    return f"node {int(match.group(1)) - 1}" if match else host
