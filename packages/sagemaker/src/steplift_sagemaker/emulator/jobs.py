"""Training jobs as the emulator holds them: state, status transitions and API rendering.

SageMaker reports a primary `TrainingJobStatus` and a finer `SecondaryStatus`; the secondary
one determines the primary (botocore's model documents the pairing, reproduced in
`PRIMARY_OF`), and every change is kept in `SecondaryStatusTransitions`.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from steplift.testing.emulation import ScriptStep

from .awsjson import AwsError, validation_error

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
class TrainingJob:
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
        self._jobs: dict[str, TrainingJob] = {}
        self.lock = threading.RLock()

    def arn(self, name: str) -> str:
        """The job ARN SageMaker would give this name."""
        return f"arn:aws:sagemaker:{self.region}:{self.account}:training-job/{name.lower()}"

    def add(self, job: TrainingJob) -> None:
        """Store a new job; a taken name is ResourceInUse like the real service."""
        with self.lock:
            key = job.name.lower()
            if key in self._jobs:
                raise AwsError(
                    "ResourceInUse",
                    "Training job names must be unique within an AWS account and region, and "
                    f"a training job with this name already exists ({self._jobs[key].arn})",
                )
            self._jobs[key] = job
            self.transition(job, job.secondary)

    def get(self, name: str) -> TrainingJob:
        """The job of that name, or the service's not-found ValidationException."""
        with self.lock:
            job = self._jobs.get(name.lower())
        if job is None:
            raise validation_error(NOT_FOUND)
        return job

    def find(self, name: str) -> TrainingJob | None:
        """The job of that name, if any."""
        with self.lock:
            return self._jobs.get(name.lower())

    def by_arn(self, arn: str) -> TrainingJob | None:
        """The job with that ARN, if any."""
        with self.lock:
            return next((job for job in self._jobs.values() if job.arn == arn), None)

    def __iter__(self) -> Iterator[TrainingJob]:
        with self.lock:
            return iter(list(self._jobs.values()))

    def transition(
        self, job: TrainingJob, secondary: str, failure_reason: str | None = None
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
