"""Execute mode: one worker thread per training job walks it through SageMaker's lifecycle.

Starting (capacity, queue) -> Downloading (channels, checkpoints) -> Training (the command as a
local process, output to CloudWatch Logs) -> Uploading (model.tar.gz, output.tar.gz) ->
Completed | Failed; StopTrainingJob -> Stopping -> Stopped; MaxRuntimeInSeconds ->
Stopped/MaxRuntimeExceeded; a spot interruption -> Interrupted -> Starting again (checkpoints
restored), or Stopped/MaxWaitTimeExceeded once MaxWaitTimeInSeconds is spent.
The lifecycles follow SageMaker's "Managed Spot Training Lifecycle" and DescribeTrainingJob docs.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from steplift.testing.emulation import Faults, JobProcess

from . import container
from .jobs import JobStore, TrainingJob
from .storage import (
    InternalClients,
    LogStreamWriter,
    download_prefix,
    upload_directory,
    upload_tarball,
)

logger = logging.getLogger(__name__)
job_output = logging.getLogger("steplift_sagemaker.emulator.job_output")
"""Every job output line, also logged here (the standalone server shows them)."""

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


class JobRunner:
    """Runs one training job in execute mode on its own thread."""

    def __init__(self, job: TrainingJob, context: RunContext) -> None:
        self.job = job
        self.context = context
        self.store = context.store
        self.workspace: container.Workspace | None = None
        self.process: JobProcess | None = None
        self._stop_requested = threading.Event()
        self._preempt_requested = threading.Event()
        self._instance_lost = threading.Event()
        self._shutdown = threading.Event()
        self._used_runtime = 0.0
        self._thread = threading.Thread(target=self._run, name=f"job-{job.name}", daemon=True)

    # -- control, called from API threads

    def start(self) -> None:
        """Start walking the job through its lifecycle."""
        self._thread.start()

    def request_stop(self) -> None:
        """StopTrainingJob was called (the job is already Stopping)."""
        self._stop_requested.set()

    def request_preempt(self) -> None:
        """Interrupt the job as a spot reclaim does."""
        self._preempt_requested.set()

    def request_instance_failure(self) -> None:
        """Lose the training instance: the job fails with SageMaker's internal error."""
        self._instance_lost.set()

    def shutdown(self, timeout: float = 15.0) -> None:
        """End the job now (emulator stopping): terminate its process and join the thread."""
        self._shutdown.set()
        process = self.process
        if process is not None:
            process.terminate(min(self.context.grace, 1.0))
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        """True while the worker thread runs."""
        return self._thread.is_alive()

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
            self.workspace = self._download(attempt)
            if self.workspace is None:
                return
            if self._interrupted():
                self._finish_stopped("Stopped")
                return
            if not self._set("Training"):
                return
            if not self._train(self.workspace):
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

    def _download(self, attempt: int) -> container.Workspace | None:
        """Lay out /opt/ml and fetch channels and checkpoints; None when the job failed."""
        root = self.context.workdir / self.job.name.lower() / f"attempt-{attempt}"
        workspace = container.prepare_workspace(self.job, root)
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
                download_prefix(s3, source["S3Uri"], workspace.channel_dir(channel["ChannelName"]))
            checkpoint = self.job.request.get("CheckpointConfig")
            if checkpoint and workspace.checkpoint_dir is not None:
                download_prefix(s3, checkpoint["S3Uri"], workspace.checkpoint_dir)
        except (ClientError, BotoCoreError) as error:
            self._set("Failed", f"ClientError: Data download failed: {error}")
            return None
        return workspace

    def _train(self, workspace: container.Workspace) -> bool:
        """Run the command; False when the job reached its end, True when it was preempted."""
        command = container.command(self.job, workspace)
        if not command:
            self._set(
                "Failed",
                "ClientError: the emulator runs AlgorithmSpecification."
                "ContainerEntrypoint (+ ContainerArguments); this job has none",
            )
            return False
        stream = f"{self.job.name}/{container.HOST}-{int(time.time())}"
        writer = LogStreamWriter(self.context.clients.logs, stream)
        remaining = self.job.stopping_condition["MaxRuntimeInSeconds"] - self._used_runtime
        started = time.monotonic()
        process = JobProcess(
            command,
            env=container.environment(self.job, workspace, self.context.client_env()),
            cwd=workspace.root,
            on_line=lambda line: self._output(writer, line),
            max_runtime=max(remaining, 0.01),
            grace=self.context.grace,
        )
        waited_out = False
        try:
            self.process = process.start()
            while process.wait(_POLL) is None:
                if (
                    self._interrupted()
                    or self._preempt_requested.is_set()
                    or self._instance_lost.is_set()
                ):
                    process.terminate()
                elif self._wait_exceeded():
                    waited_out = True
                    process.terminate()
        except OSError as error:
            self._set("Failed", f"AlgorithmError: could not start {command[0]!r}: {error}")
            return False
        finally:
            writer.close()
            self._used_runtime += time.monotonic() - started
        if self._shutdown.is_set():
            self._set("Stopped")
            return False
        if self._instance_lost.is_set() and not self._stop_requested.is_set():
            self._sync_checkpoints()  # SageMaker uploads checkpoints as they are written
            self._set("Failed", INTERNAL_ERROR)
            return False
        if self._preempt_requested.is_set() and not self._stop_requested.is_set():
            return True
        if self._stop_requested.is_set():
            self._finish_stopped("Stopped")
        elif waited_out:
            self._finish_stopped("MaxWaitTimeExceeded")
        elif process.timed_out:
            self._finish_stopped("MaxRuntimeExceeded")
        elif process.exit_code == 0:
            self._finish_completed()
        else:
            self._sync_checkpoints()
            self._set("Failed", self._algorithm_error(workspace, process.exit_code))
        return False

    def _output(self, writer: LogStreamWriter, line: str) -> None:
        writer.write(line)
        job_output.info("[%s] %s", self.job.name, line)

    def _algorithm_error(self, workspace: container.Workspace, exit_code: int | None) -> str:
        # As on SageMaker, /opt/ml/output/failure is where an algorithm explains itself.
        try:
            detail = workspace.failure_file.read_text(errors="replace").strip()[:900]
        except OSError:
            detail = ""
        if exit_code is not None and exit_code < 0:
            exit_code = 128 - exit_code  # a container killed by signal N exits 128+N
        return (
            f"AlgorithmError: {detail or 'See job logs for more information'}, "
            f"exit code: {exit_code}"
        )

    # -- endings

    def _finish_completed(self) -> None:
        if not self._set("Uploading"):
            return
        try:
            self._upload_outputs()
            self._sync_checkpoints(raise_errors=True)
        except (ClientError, BotoCoreError, OSError) as error:
            self._set("Failed", f"ClientError: Failed to upload model artifacts: {error}")
            return
        self._set("Stopped" if self._stop_requested.is_set() else "Completed")

    def _finish_stopped(self, secondary: str) -> None:
        """Stopping, then a Stopped secondary status; artifacts so far are still uploaded."""
        self._set("Stopping")
        if self.workspace is not None and not self._shutdown.is_set():
            try:
                self._upload_outputs()
            except (ClientError, BotoCoreError, OSError):
                logger.warning("could not upload artifacts of stopped job %s", self.job.name)
            self._sync_checkpoints()
        self._set(secondary)

    def _upload_outputs(self) -> None:
        workspace = self.workspace
        assert workspace is not None
        s3 = self.context.clients.s3
        prefix = (
            f"{self.job.request['OutputDataConfig']['S3OutputPath'].rstrip('/')}/"
            f"{self.job.name}/output"
        )
        upload_tarball(s3, workspace.model_dir, f"{prefix}/model.tar.gz")
        self.job.model_artifacts = f"{prefix}/model.tar.gz"
        if any(workspace.output_data_dir.iterdir()):
            upload_tarball(s3, workspace.output_data_dir, f"{prefix}/output.tar.gz")

    def _sync_checkpoints(self, raise_errors: bool = False) -> None:
        checkpoint = self.job.request.get("CheckpointConfig")
        workspace = self.workspace
        if not checkpoint or workspace is None or workspace.checkpoint_dir is None:
            return
        try:
            upload_directory(self.context.clients.s3, workspace.checkpoint_dir, checkpoint["S3Uri"])
        except (ClientError, BotoCoreError, OSError):
            if raise_errors:
                raise
            logger.warning("could not upload checkpoints of %s", self.job.name)


def remove_workdir(path: Path) -> None:
    """Delete the emulator's job directories."""
    shutil.rmtree(path, ignore_errors=True)
