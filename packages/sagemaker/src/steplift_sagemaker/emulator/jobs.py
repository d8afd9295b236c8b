"""Training jobs as the emulator holds them, and their lifecycle in both modes.

SageMaker reports a primary `TrainingJobStatus` and a finer `SecondaryStatus`; the secondary
one determines the primary (botocore's model documents the pairing, reproduced in
`PRIMARY_OF`), and every change is kept in `SecondaryStatusTransitions`. In scripted mode a job
moves one step along its script each time it is observed (see the service); in execute mode a
:class:`JobRunner` walks it through SageMaker's lifecycle:

Starting (capacity, queue) -> Downloading (channels, checkpoints) -> Training (the command as a
local process, output to CloudWatch Logs) -> Uploading (model.tar.gz, output.tar.gz) ->
Completed | Failed; StopTrainingJob -> Stopping -> Stopped; MaxRuntimeInSeconds ->
Stopped/MaxRuntimeExceeded; a spot interruption -> Interrupted -> Starting again (checkpoints
restored), or Stopped/MaxWaitTimeExceeded once MaxWaitTimeInSeconds is spent.
The lifecycles follow SageMaker's "Managed Spot Training Lifecycle" and DescribeTrainingJob docs.

A job with ``InstanceCount = N`` trains on N hosts ``algo-1`` .. ``algo-N``, one local process
each (a :class:`NodeGroup`), each with its own `/opt/ml`, its own CloudWatch stream
``<job>/algo-K-<epoch>`` and a rendezvous address on 127.0.0.1. The job completes only when
every host exits 0; the first host to fail fails the job (its FailureReason names the host) and
stops the others; a stop, the max runtime or a spot interruption stops every host. As on
SageMaker, the model and output data of every host are aggregated into one tarball each, and
every host's checkpoint folder is synced to the one CheckpointConfig.S3Uri.
"""

from __future__ import annotations

import copy
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError

from steplift.emulation.sandbox import Container, Sandbox
from steplift.testing.emulation import Faults, JobProcess, NodeGroup, ScriptStep, free_port

from . import container
from .errors import ApiError, validation_error
from .logs import LogStreamWriter
from .storage import (
    InternalClients,
    download_prefix,
    split_s3_uri,
    upload_directory,
    upload_tarball,
)

logger = logging.getLogger(__name__)
job_output = logging.getLogger("steplift_sagemaker.emulator.job_output")
"""Every job output line, also logged here (the standalone server shows them)."""

DEFAULT_MAX_RUNTIME = 86400
"""SageMaker's MaxRuntimeInSeconds when the request gives none (one day)."""

PRIMARY_OF = {
    "Starting": "InProgress",
    "Pending": "InProgress",
    "LaunchingMLInstances": "InProgress",
    "PreparingTrainingStack": "InProgress",
    "Downloading": "InProgress",
    "DownloadingTrainingImage": "InProgress",
    "Training": "InProgress",
    "Uploading": "InProgress",
    "Interrupted": "InProgress",
    "Restarting": "InProgress",
    "Updating": "InProgress",
    "Stopping": "Stopping",
    "Stopped": "Stopped",
    "MaxRuntimeExceeded": "Stopped",
    "MaxWaitTimeExceeded": "Stopped",
    "Completed": "Completed",
    "Failed": "Failed",
}
TERMINAL = frozenset({"Completed", "Failed", "Stopped"})

STATUS_MESSAGES = {
    "Starting": "Launching requested ML instances",
    "Pending": "Waiting for compute capacity",
    "Downloading": "Downloading input data",
    "Training": "Training image download completed. Training in progress.",
    "Uploading": "Uploading generated training model",
    "Interrupted": "Spot instances were interrupted; the job will restart",
    "Restarting": "Restarting the training job",
    "Stopping": "Stopping the training job",
    "Stopped": "Training job stopped",
    "MaxRuntimeExceeded": "Training job exceeded MaxRuntimeInSeconds provided",
    "MaxWaitTimeExceeded": "Training job exceeded MaxWaitTimeInSeconds provided",
    "Completed": "Training job completed",
    "Failed": "Training job failed",
}

DEFAULT_SCRIPT = (
    ScriptStep("Starting"),
    ScriptStep("Downloading"),
    ScriptStep("Training"),
    ScriptStep("Uploading"),
    ScriptStep("Completed"),
)

NOT_FOUND = "Requested resource not found."

UPLOAD_ERRORS = (ClientError, BotoCoreError, S3UploadFailedError, OSError)
"""What an upload to S3 can raise (boto3's transfer wraps a refused upload in its own error)."""


def upload_failure(uri: str, error: Exception, region: str) -> str:
    """FailureReason of an artifact upload to ``uri`` that failed with ``error``: a
    ClientError, the customer's to fix, worded as SageMaker's "Artifact upload failed"."""
    bucket, _ = split_s3_uri(uri)
    if "NoSuchBucket" in str(error):
        return (
            f"ClientError: Artifact upload failed: the S3 bucket '{bucket}' of {uri} does not "
            f"exist. Please ensure that the bucket exists in the selected region ({region})."
        )
    detail = str(error).rpartition(": ")[2] or type(error).__name__
    return f"ClientError: Artifact upload failed: Unable to upload to {uri} ({detail})"


def check_script(steps: list[ScriptStep]) -> list[ScriptStep]:
    """Refuse empty scripts and statuses SageMaker does not have (ValueError)."""
    if not steps:
        raise ValueError("a script needs at least one step")
    for step in steps:
        if step.status not in PRIMARY_OF:
            known = ", ".join(PRIMARY_OF)
            raise ValueError(f"unknown SageMaker secondary status {step.status!r} ({known})")
    return steps


@dataclass
class Transition:
    """One entry of SecondaryStatusTransitions."""

    status: str
    start: float
    end: float | None = None

    def render(self) -> dict[str, Any]:
        """The API form of this transition."""
        item: dict[str, Any] = {"Status": self.status, "StartTime": self.start}
        if self.end is not None:
            item["EndTime"] = self.end
        item["StatusMessage"] = STATUS_MESSAGES.get(self.status, self.status)
        return item


@dataclass
class EmulatedJob:
    """Everything the emulator knows about one training job."""

    name: str
    arn: str
    request: dict[str, Any]
    tags: list[dict[str, str]]
    created: float
    status: str = "InProgress"
    secondary: str = "Starting"
    transitions: list[Transition] = field(default_factory=list)
    failure_reason: str | None = None
    training_start: float | None = None
    training_end: float | None = None
    last_modified: float = 0.0
    model_artifacts: str | None = None
    script: list[ScriptStep] = field(default_factory=list)
    script_position: int = 0
    described: bool = False

    @property
    def spot(self) -> bool:
        """True for a managed spot training job."""
        return bool(self.request.get("EnableManagedSpotTraining"))

    @property
    def stopping_condition(self) -> dict[str, Any]:
        """The StoppingCondition with SageMaker's default MaxRuntimeInSeconds filled in."""
        condition = dict(self.request.get("StoppingCondition") or {})
        condition.setdefault("MaxRuntimeInSeconds", DEFAULT_MAX_RUNTIME)
        return condition

    @property
    def terminal(self) -> bool:
        """True once the job reached Completed, Failed or Stopped."""
        return self.status in TERMINAL

    def describe(self) -> dict[str, Any]:
        """The DescribeTrainingJob answer."""
        answer = {k: copy.deepcopy(v) for k, v in self.request.items() if k != "Tags"}
        answer.update(
            TrainingJobName=self.name,
            TrainingJobArn=self.arn,
            TrainingJobStatus=self.status,
            SecondaryStatus=self.secondary,
            StoppingCondition=self.stopping_condition,
            CreationTime=self.created,
            LastModifiedTime=self.last_modified,
            SecondaryStatusTransitions=[t.render() for t in self.transitions],
            EnableNetworkIsolation=bool(self.request.get("EnableNetworkIsolation")),
            EnableInterContainerTrafficEncryption=bool(
                self.request.get("EnableInterContainerTrafficEncryption")
            ),
            EnableManagedSpotTraining=self.spot,
        )
        if self.model_artifacts:
            answer["ModelArtifacts"] = {"S3ModelArtifacts": self.model_artifacts}
        if self.failure_reason:
            answer["FailureReason"] = self.failure_reason
        if self.training_start is not None:
            answer["TrainingStartTime"] = self.training_start
        if self.training_end is not None:
            answer["TrainingEndTime"] = self.training_end
            seconds = max(1, round(self.training_end - (self.training_start or self.created)))
            answer["TrainingTimeInSeconds"] = seconds
            answer["BillableTimeInSeconds"] = seconds
        return answer

    def summary(self) -> dict[str, Any]:
        """The ListTrainingJobs summary."""
        item: dict[str, Any] = {
            "TrainingJobName": self.name,
            "TrainingJobArn": self.arn,
            "CreationTime": self.created,
            "LastModifiedTime": self.last_modified,
            "TrainingJobStatus": self.status,
            "SecondaryStatus": self.secondary,
        }
        if self.training_end is not None:
            item["TrainingEndTime"] = self.training_end
        return item


class JobStore:
    """Thread-safe home of the emulator's training jobs.

    Names are matched case-insensitively, as SageMaker lower-cases them in ARNs.
    """

    def __init__(self, region: str, account: str) -> None:
        self.region = region
        self.account = account
        self._jobs: dict[str, EmulatedJob] = {}
        self.lock = threading.RLock()

    def arn(self, name: str) -> str:
        """The job ARN SageMaker would give this name."""
        return f"arn:aws:sagemaker:{self.region}:{self.account}:training-job/{name.lower()}"

    def add(self, job: EmulatedJob) -> None:
        """Store a new job; a taken name is ResourceInUse like the real service."""
        with self.lock:
            key = job.name.lower()
            if key in self._jobs:
                raise ApiError(
                    "ResourceInUse",
                    "Training job names must be unique within an AWS account and region, and "
                    f"a training job with this name already exists ({self._jobs[key].arn})",
                )
            self._jobs[key] = job
            self.transition(job, job.secondary)

    def get(self, name: str) -> EmulatedJob:
        """The job of that name, or the service's not-found ValidationException."""
        with self.lock:
            job = self._jobs.get(name.lower())
        if job is None:
            raise validation_error(NOT_FOUND)
        return job

    def find(self, name: str) -> EmulatedJob | None:
        """The job of that name, if any."""
        with self.lock:
            return self._jobs.get(name.lower())

    def by_arn(self, arn: str) -> EmulatedJob | None:
        """The job with that ARN, if any."""
        with self.lock:
            return next((job for job in self._jobs.values() if job.arn == arn), None)

    def __iter__(self) -> Iterator[EmulatedJob]:
        with self.lock:
            return iter(list(self._jobs.values()))

    def transition(
        self, job: EmulatedJob, secondary: str, failure_reason: str | None = None
    ) -> bool:
        """Move a job to a secondary status (and its primary); False if that is not allowed."""
        with self.lock:
            if job.transitions and job.terminal:
                return False
            if job.status == "Stopping" and PRIMARY_OF[secondary] == "InProgress":
                return False  # once stopping, a job only goes on to a Stopped status
            now = time.time()
            if job.transitions and job.transitions[-1].status == secondary:
                return True
            if job.transitions:
                job.transitions[-1].end = now
            job.secondary = secondary
            job.status = PRIMARY_OF[secondary]
            job.transitions.append(Transition(secondary, now))
            job.last_modified = now
            if failure_reason:
                job.failure_reason = failure_reason[:1024]
            if job.training_start is None and secondary in ("Downloading", "Training"):
                job.training_start = now
            if job.terminal:
                job.training_end = now
                job.transitions[-1].end = now
            return True


# -- execute mode

CAPACITY_ERROR = (
    "CapacityError: Unable to provision requested ML compute capacity. "
    "Please retry using a different ML instance type."
)
INTERNAL_ERROR = "InternalServerError: We encountered an internal error. Please try again."
_POLL = 0.05
_MAX_ATTEMPTS = 100  # spot restarts per job; each needs a preemption, so this is a safety net


@dataclass(frozen=True)
class RunContext:
    """What a runner needs from its emulator."""

    store: JobStore
    clients: InternalClients
    workdir: Path
    faults: Callable[[], Faults]
    client_env: Callable[[], Mapping[str, str]]
    grace: float
    sandbox: Sandbox
    """Where the hosts' containers are made (their image, folders and environment)."""


class JobRunner:
    """Runs one training job in execute mode on its own thread."""

    def __init__(self, job: EmulatedJob, context: RunContext) -> None:
        self.job = job
        self.context = context
        self.store = context.store
        self.hosts = container.hosts(job)
        self.workspaces: list[container.Workspace] = []
        """This attempt's `/opt/ml` of every host, in host order."""
        self.group: NodeGroup | None = None
        """This attempt's host processes, in host order (None before training starts)."""
        self._stop_requested = threading.Event()
        self._preempt_requested = threading.Event()
        self._instance_lost = threading.Event()
        self._lost_host = 1
        self._shutdown = threading.Event()
        self._wake = threading.Event()
        self._used_runtime = 0.0
        self._thread = threading.Thread(target=self._run, name=f"job-{job.name}", daemon=True)

    # -- control, called from API threads

    def start(self) -> None:
        """Start walking the job through its lifecycle."""
        self._thread.start()

    def request_stop(self) -> None:
        """StopTrainingJob was called (the job is already Stopping)."""
        self._stop_requested.set()
        self._wake.set()

    def request_preempt(self) -> None:
        """Interrupt the job as a spot reclaim does (every host goes)."""
        self._preempt_requested.set()
        self._wake.set()

    def request_instance_failure(self, host: int = 1) -> None:
        """Lose the instance of host ``host`` (1-based, ``algo-<host>``): its process is
        killed, the other hosts are stopped and the job fails with SageMaker's internal error.

        ValueError for a host the job does not have.
        """
        if not 1 <= host <= len(self.hosts):
            raise ValueError(f"{self.job.name} has hosts algo-1..algo-{len(self.hosts)}")
        self._lost_host = host
        self._instance_lost.set()
        self._wake.set()

    def shutdown(self, timeout: float = 15.0) -> None:
        """End the job now (emulator stopping): terminate its processes and join the thread."""
        self._shutdown.set()
        self._wake.set()
        group = self.group
        if group is not None:
            group.terminate(min(self.context.grace, 1.0))
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        """True while the worker thread runs."""
        return self._thread.is_alive()

    @property
    def process(self) -> JobProcess | None:
        """The process of the first host (``algo-1``), None before training starts."""
        group = self.group
        return group.processes[0] if group is not None else None

    @property
    def workspace(self) -> container.Workspace | None:
        """The `/opt/ml` of the first host (``algo-1``), None before the download."""
        return self.workspaces[0] if self.workspaces else None

    def processes_running(self) -> bool:
        """True while a process of any host is alive."""
        group = self.group
        return group is not None and group.is_running()

    # -- lifecycle

    def _run(self) -> None:
        try:
            self._lifecycle()
        except Exception as error:  # the job must end in a state, whatever broke
            logger.exception("training job %s crashed in the emulator", self.job.name)
            self._set("Failed", f"InternalServerError: emulator error: {error}")
        if not self.job.terminal:
            # A phase change was refused because StopTrainingJob came in between.
            self._finish_stopped("Stopped")

    def _set(self, secondary: str, reason: str | None = None) -> bool:
        return self.store.transition(self.job, secondary, reason)

    def _interrupted(self) -> bool:
        return self._stop_requested.is_set() or self._shutdown.is_set()

    def _wait_deadline(self) -> float | None:
        if not self.job.spot:
            return None
        max_wait = self.job.stopping_condition.get("MaxWaitTimeInSeconds")
        return None if max_wait is None else self.job.created + max_wait

    def _wait_exceeded(self) -> bool:
        deadline = self._wait_deadline()
        return deadline is not None and time.time() >= deadline

    def _lifecycle(self) -> None:
        if self.context.faults().refuse_create == "capacity":
            self._set("Failed", CAPACITY_ERROR)
            return
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            if not self._wait_for_capacity():
                return
            if not self._set("Downloading"):
                return
            workspaces = self._download(attempt)
            if workspaces is None:
                return
            self.workspaces = workspaces
            if self._interrupted():
                self._finish_stopped("Stopped")
                return
            if not self._set("Training"):
                return
            if not self._train(workspaces):
                return
            # preempted: the spot instance is gone; SageMaker relaunches and restores.
            self._preempt_requested.clear()
            if not self._set("Interrupted"):
                return
            self._sync_checkpoints()
            if self._wait_exceeded():
                self._finish_stopped("MaxWaitTimeExceeded")
                return
            if not self._set("Starting"):
                return
        self._set("Failed", "InternalServerError: too many spot interruptions")

    def _wait_for_capacity(self) -> bool:
        """Stay in Starting while the queue is stuck; False when the job ended meanwhile."""
        while self.context.faults().stuck_in_queue:
            if self._interrupted():
                self._finish_stopped("Stopped")
                return False
            if self._wait_exceeded():
                self._finish_stopped("MaxWaitTimeExceeded")
                return False
            self._stop_requested.wait(_POLL * 4)
        if self._interrupted():
            self._finish_stopped("Stopped")
            return False
        return True

    def _download(self, attempt: int) -> list[container.Workspace] | None:
        """Lay out every host's /opt/ml and fetch channels and checkpoints into each; None
        when the job failed."""
        root = self.context.workdir / self.job.name.lower() / f"attempt-{attempt}"
        workspaces = [
            container.prepare_workspace(self.job, root / host, host) for host in self.hosts
        ]
        s3 = self.context.clients.s3
        try:
            for channel in self.job.request.get("InputDataConfig") or []:
                source = (channel.get("DataSource") or {}).get("S3DataSource")
                if source is None:
                    continue
                if source.get("S3DataType", "S3Prefix") != "S3Prefix":
                    self._set(
                        "Failed",
                        "ClientError: the emulator only supports S3Prefix "
                        f"channels (channel {channel['ChannelName']})",
                    )
                    return None
                for workspace in workspaces:  # FullyReplicated: every host gets everything
                    download_prefix(
                        s3, source["S3Uri"], workspace.channel_dir(channel["ChannelName"])
                    )
            checkpoint = self.job.request.get("CheckpointConfig")
            for workspace in workspaces:
                if checkpoint and workspace.checkpoint_dir is not None:
                    download_prefix(s3, checkpoint["S3Uri"], workspace.checkpoint_dir)
        except (ClientError, BotoCoreError) as error:
            self._set("Failed", f"ClientError: Data download failed: {error}")
            return None
        return workspaces

    def _train(self, workspaces: list[container.Workspace]) -> bool:
        """Run the command on every host; False when the job reached its end, True when it
        was preempted."""
        commands = [container.command(self.job, workspace) for workspace in workspaces]
        if not commands[0]:
            self._set(
                "Failed",
                "ClientError: the emulator runs AlgorithmSpecification."
                "ContainerEntrypoint (+ ContainerArguments); this job has none",
            )
            return False
        epoch = int(time.time())
        writers = [
            LogStreamWriter(self.context.clients.logs, f"{self.job.name}/{host}-{epoch}")
            for host in self.hosts
        ]
        remaining = self.job.stopping_condition["MaxRuntimeInSeconds"] - self._used_runtime
        # One port per attempt: the hosts' rendezvous (see container.environment).
        rendezvous = ("127.0.0.1", free_port())
        client_env = self.context.client_env()
        try:
            containers = self._containers(workspaces)
        except OSError as error:
            for writer in writers:
                writer.close()
            self._set("Failed", f"ClientError: could not prepare the training image: {error}")
            return False

        def make_host(index: int, on_exit: Callable[[JobProcess], None]) -> JobProcess:
            writer, workspace, host = writers[index], workspaces[index], self.hosts[index]

            def exited(process: JobProcess) -> None:
                on_exit(process)
                self._wake.set()

            return containers[index].process(
                commands[index],
                container.environment(self.job, workspace, client_env, host, rendezvous),
                on_line=lambda line: self._output(writer, host, line),
                max_runtime=max(remaining, 0.01),
                grace=self.context.grace,
                on_exit=exited,
            )

        group = NodeGroup(len(self.hosts), make_host)
        waited_out = lost = False
        started = time.monotonic()
        try:
            try:
                group.start()
            except OSError as error:
                group.terminate()  # the hosts started before the one that could not
                self._set("Failed", f"AlgorithmError: could not start {commands[0][0]!r}: {error}")
                return False
            self.group = group
            while group.is_running():
                if self._interrupted() or self._preempt_requested.is_set():
                    group.terminate()
                elif self._instance_lost.is_set() and not lost:
                    lost = True  # a lost instance is gone at once; the others then stop
                    group.kill_node(self._lost_host - 1)
                elif self._wait_exceeded():
                    waited_out = True
                    group.terminate()
                self._wake.wait(_POLL)
                self._wake.clear()
        finally:
            for writer in writers:
                writer.close()
            self._used_runtime += time.monotonic() - started
        if self._shutdown.is_set():
            self._set("Stopped")
            return False
        if self._instance_lost.is_set() and not self._stop_requested.is_set():
            self._sync_checkpoints()  # SageMaker uploads checkpoints as they are written
            where = f" (host {self._lost_host_name()} was lost)" if len(self.hosts) > 1 else ""
            self._set("Failed", INTERNAL_ERROR + where)
            return False
        if self._preempt_requested.is_set() and not self._stop_requested.is_set():
            return True
        if self._stop_requested.is_set():
            self._finish_stopped("Stopped")
        elif waited_out:
            self._finish_stopped("MaxWaitTimeExceeded")
        elif group.timed_out:
            self._finish_stopped("MaxRuntimeExceeded")
        elif all(code == 0 for code in group.exit_codes):
            self._finish_completed()
        else:
            self._sync_checkpoints()
            failed = group.failed_node
            if failed is None:  # not seen failing first: take the first host that did
                failed = next(i for i, code in enumerate(group.exit_codes) if code != 0)
            self._set("Failed", self._algorithm_error(failed, group.exit_codes[failed]))
        return False

    def _containers(self, workspaces: list[container.Workspace]) -> list[Container]:
        """A fresh container of the job's image for every host of this attempt."""
        image = container.image_uri(self.job)
        return [
            self.context.sandbox.container(
                str(workspace.root.relative_to(self.context.workdir)),
                image,
                hostname=host,
                mounts={container.CONTAINER_ROOT: workspace.root},
            )
            for workspace, host in zip(workspaces, self.hosts, strict=True)
        ]

    def _lost_host_name(self) -> str:
        return container.host_name(self._lost_host)

    def _output(self, writer: LogStreamWriter, host: str, line: str) -> None:
        writer.write(line)
        if len(self.hosts) > 1:
            job_output.info("[%s %s] %s", self.job.name, host, line)
        else:
            job_output.info("[%s] %s", self.job.name, line)

    def _algorithm_error(self, host: int, exit_code: int | None) -> str:
        """FailureReason of host index ``host`` exiting with ``exit_code``."""
        # As on SageMaker, /opt/ml/output/failure is where an algorithm explains itself.
        try:
            failure = self.workspaces[host].failure_file
            detail = failure.read_text(errors="replace").strip()[:900]
        except OSError:
            detail = ""
        if exit_code is not None and exit_code < 0:
            exit_code = 128 - exit_code  # a container killed by signal N exits 128+N
        where = f" (host {self.hosts[host]})" if len(self.hosts) > 1 else ""
        return (
            f"AlgorithmError: {detail or 'See job logs for more information'}, "
            f"exit code: {exit_code}{where}"
        )

    # -- endings

    def _finish_completed(self) -> None:
        if not self._set("Uploading"):
            return
        try:
            self._upload_outputs()
        except UPLOAD_ERRORS as error:
            self._set("Failed", upload_failure(self._output_uri(), error, self.store.region))
            return
        try:
            self._sync_checkpoints(raise_errors=True)
        except UPLOAD_ERRORS as error:
            checkpoint = self.job.request["CheckpointConfig"]["S3Uri"]
            self._set("Failed", upload_failure(checkpoint, error, self.store.region))
            return
        self._set("Stopped" if self._stop_requested.is_set() else "Completed")

    def _finish_stopped(self, secondary: str) -> None:
        """Stopping, then a Stopped secondary status; artifacts so far are still uploaded."""
        self._set("Stopping")
        if self.workspaces and not self._shutdown.is_set():
            try:
                self._upload_outputs()
            except UPLOAD_ERRORS:
                logger.warning("could not upload artifacts of stopped job %s", self.job.name)
            self._sync_checkpoints()
        self._set(secondary)

    def _upload_outputs(self) -> None:
        workspaces = self.workspaces
        assert workspaces
        s3 = self.context.clients.s3
        prefix = self._output_uri()
        model = self._aggregate("model", [workspace.model_dir for workspace in workspaces])
        upload_tarball(s3, model, f"{prefix}/model.tar.gz")
        self.job.model_artifacts = f"{prefix}/model.tar.gz"
        output_data = self._aggregate("output-data", [w.output_data_dir for w in workspaces])
        if any(output_data.iterdir()):
            upload_tarball(s3, output_data, f"{prefix}/output.tar.gz")

    def _output_uri(self) -> str:
        """Where the job's model.tar.gz and output.tar.gz go."""
        output_path = self.job.request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        return f"{output_path}/{self.job.name}/output"

    def _aggregate(self, name: str, folders: list[Path]) -> Path:
        """One folder holding every host's ``folders`` (SageMaker aggregates them into one
        tarball; hosts should avoid clashing names, and here the later host wins)."""
        if len(folders) == 1:
            return folders[0]
        merged = self.workspaces[0].root.parent / "aggregated" / name
        shutil.rmtree(merged, ignore_errors=True)
        merged.mkdir(parents=True)
        for folder in folders:
            shutil.copytree(folder, merged, dirs_exist_ok=True)
        return merged

    def _sync_checkpoints(self, raise_errors: bool = False) -> None:
        checkpoint = self.job.request.get("CheckpointConfig")
        if not checkpoint:
            return
        for workspace in self.workspaces:  # every host syncs to the one S3Uri
            if workspace.checkpoint_dir is None:
                continue
            try:
                upload_directory(
                    self.context.clients.s3, workspace.checkpoint_dir, checkpoint["S3Uri"]
                )
            except UPLOAD_ERRORS:
                if raise_errors:
                    raise
                logger.warning("could not upload checkpoints of %s", self.job.name)


def remove_workdir(path: Path) -> None:
    """Delete the emulator's job directories."""
    shutil.rmtree(path, ignore_errors=True)
