"""The training-job operations of the SageMaker API, as the emulator answers them.

Create/Describe/List/StopTrainingJob (and AddTags/ListTags on training-job ARNs) are served
here; every other SageMaker operation falls through to moto. (moto's own ListTrainingJobs
cuts its page before filtering, knows no SecondaryStatus and reports every job Completed.)
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from steplift.testing.emulation import EmulatorMode, Faults, ScriptStep

from .awsjson import AwsError, parse_timestamp, validation_error
from .jobs import DEFAULT_SCRIPT, JobStore, TrainingJob, check_script
from .runner import CAPACITY_ERROR, JobRunner, RunContext
from .validation import validate_against_model, validate_create_training_job

Handler = Callable[[dict[str, Any]], "dict[str, Any] | None"]


def quota_error(instance_type: str) -> AwsError:
    """ResourceLimitExceeded worded as SageMaker words an exhausted instance quota."""
    return AwsError(
        "ResourceLimitExceeded",
        f"The account-level service limit '{instance_type} for training job usage' is 0 "
        "Instances, with current utilization of 0 Instances and a request delta of 1 Instances. "
        "Please use AWS Service Quotas to request an increase for this quota. If AWS Service "
        "Quotas is not available, contact AWS support to request an increase for this quota.",
    )


class TrainingJobService:
    """Training jobs in one emulator: the API operations, scripted steps and runners."""

    def __init__(
        self,
        store: JobStore,
        mode: EmulatorMode,
        faults: Callable[[], Faults],
        run_context: Callable[[], RunContext],
    ) -> None:
        self.store = store
        self.mode = mode
        self._faults = faults
        self._run_context = run_context
        self._runners: dict[str, JobRunner] = {}
        self._default_script: list[ScriptStep] = list(DEFAULT_SCRIPT)
        self._job_scripts: dict[str, list[ScriptStep]] = {}
        self._capacity_refused: set[str] = set()
        self.handlers: dict[str, Handler] = {
            "CreateTrainingJob": self.create_training_job,
            "DescribeTrainingJob": self.describe_training_job,
            "ListTrainingJobs": self.list_training_jobs,
            "StopTrainingJob": self.stop_training_job,
            "AddTags": self.add_tags,
            "ListTags": self.list_tags,
        }

    # -- operations

    def create_training_job(self, params: dict[str, Any]) -> dict[str, Any]:
        """CreateTrainingJob: validate, refuse on quota, store and start the job."""
        validate_create_training_job(params)
        name = params["TrainingJobName"]
        faults = self._faults()
        if self.store.find(name) is None and faults.refuse_create == "quota":
            kind = (params.get("ResourceConfig") or {}).get("InstanceType", "ml.m5.large")
            raise quota_error(kind)
        now = time.time()
        job = TrainingJob(
            name=name,
            arn=self.store.arn(name),
            request=copy.deepcopy(params),
            tags=list(params.get("Tags") or []),
            created=now,
            last_modified=now,
        )
        if self.mode == "scripted":
            job.script = list(self._job_scripts.get(name.lower(), self._default_script))
            job.secondary = job.script[0].status
        with self.store.lock:
            self.store.add(job)
            if self.mode == "scripted":
                if faults.refuse_create == "capacity":
                    self._capacity_refused.add(job.name)
            else:
                runner = JobRunner(job, self._run_context())
                self._runners[job.name] = runner
                runner.start()
        return {"TrainingJobArn": job.arn}

    def describe_training_job(self, params: dict[str, Any]) -> dict[str, Any]:
        """DescribeTrainingJob; in scripted mode each call moves the job one step on."""
        validate_against_model("DescribeTrainingJob", params)
        job = self.store.get(params["TrainingJobName"])
        with self.store.lock:
            if self.mode == "scripted":
                self._advance_script(job)
            return job.describe()

    def list_training_jobs(self, params: dict[str, Any]) -> dict[str, Any]:
        """ListTrainingJobs with its filters, sorting and NextToken paging.

        A token marks the last job returned (its sort key and name), not an offset: jobs that
        leave the filtered set between pages (they ended) shift nothing, so a page never skips
        a job that still matches. In scripted mode a listed job has been observed, so like a
        describe it moves one step along its script (a job that thereby leaves
        ``StatusEquals`` is not shown); a stop, though, settles only on a describe, so a
        listing can show a job Stopping.
        """
        validate_against_model("ListTrainingJobs", params)
        descending = params.get("SortOrder", "Ascending") == "Descending"
        sort_by = params.get("SortBy", "CreationTime")
        sort_key = _SORT_KEYS.get(sort_by, _SORT_KEYS["CreationTime"])
        after = _decode_token(params.get("NextToken"), sort_by)
        size = params.get("MaxResults", 10)
        with self.store.lock:
            jobs = sorted(
                (job for job in self.store if _matches(job, params)),
                key=sort_key,
                reverse=descending,
            )
            if after is not None:
                jobs = [
                    job
                    for job in jobs
                    if (sort_key(job) < after if descending else sort_key(job) > after)
                ]
            page, more = jobs[:size], len(jobs) > size
            if self.mode == "scripted":
                for job in page:
                    self._advance_script(job, settle_stop=False)
            summaries = [job.summary() for job in page if _matches(job, params)]
        answer: dict[str, Any] = {"TrainingJobSummaries": summaries}
        if more and page:
            answer["NextToken"] = _encode_token(sort_by, sort_key(page[-1]))
        return answer

    def stop_training_job(self, params: dict[str, Any]) -> dict[str, Any]:
        """StopTrainingJob: the job goes Stopping now and Stopped once its process is gone."""
        validate_against_model("StopTrainingJob", params)
        job = self.store.get(params["TrainingJobName"])
        with self.store.lock:
            if job.status == "Stopping":
                return {}
            if job.status != "InProgress":
                raise validation_error(
                    f"The request was rejected because the training job is in status {job.status}."
                )
            self.store.transition(job, "Stopping")
            runner = self._runners.get(job.name)
        if runner is not None:
            runner.request_stop()
        return {}

    def add_tags(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """AddTags on a training job of ours (other ARNs go to moto)."""
        job = self.store.by_arn(str(params.get("ResourceArn", "")))
        if job is None:
            return None
        with self.store.lock:
            new = {tag["Key"]: tag for tag in params.get("Tags") or []}
            job.tags = [tag for tag in job.tags if tag["Key"] not in new] + list(new.values())
        return {"Tags": list(params.get("Tags") or [])}

    def list_tags(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """ListTags on a training job of ours (other ARNs go to moto)."""
        job = self.store.by_arn(str(params.get("ResourceArn", "")))
        if job is None:
            return None
        with self.store.lock:
            return {"Tags": copy.deepcopy(job.tags)}

    # -- emulator controls

    def set_script(
        self, job_id: str | None, steps: Sequence[ScriptStep | str | Mapping[str, Any]]
    ) -> None:
        """Scripted steps for one job (existing or future) or, with None, for all new jobs."""
        script = check_script([ScriptStep.parse(step) for step in steps])
        if job_id is None:
            self._default_script = script
            return
        self._job_scripts[job_id.lower()] = script
        job = self.store.find(job_id)
        if job is not None and self.mode == "scripted":
            with self.store.lock:
                job.script = list(script)
                job.script_position = 0
                job.described = False

    def reset_scripts(self) -> None:
        """Back to the default script for every future job."""
        self._default_script = list(DEFAULT_SCRIPT)
        self._job_scripts.clear()

    def fail_instance(self, job_id: str, host: int = 1) -> None:
        """Execute mode: the instance of host ``host`` (1-based, ``algo-<host>``) of a running
        job fails (KeyError: unknown or not running; ValueError: no such host)."""
        runner = self.runner(job_id)
        if runner is None or runner.group is None:
            raise KeyError(job_id)
        runner.request_instance_failure(host)

    def preempt(self, job_id: str) -> None:
        """Spot-interrupt a running job (KeyError: unknown; ValueError: not preemptible)."""
        job = self.store.find(job_id)
        if job is None:
            raise KeyError(job_id)
        with self.store.lock:
            if not job.spot:
                raise ValueError(f"{job.name} is not a managed spot training job")
            if job.status != "InProgress":
                raise ValueError(f"{job.name} is {job.status}, not running")
            if self.mode == "scripted":
                rest = job.script[job.script_position :]
                while rest and rest[0].status in ("Starting", "Downloading", "Interrupted"):
                    rest = rest[1:]
                job.script = [
                    ScriptStep("Interrupted"),
                    ScriptStep("Starting"),
                    ScriptStep("Downloading"),
                    *rest,
                ]
                job.script_position = 0
                job.described = False
                self.store.transition(job, "Interrupted")
                return
            runner = self._runners[job.name]
        runner.request_preempt()

    def runner(self, job_id: str) -> JobRunner | None:
        """The execute-mode runner of a job."""
        job = self.store.find(job_id)
        return None if job is None else self._runners.get(job.name)

    def shutdown(self) -> None:
        """End every job process and worker thread."""
        for runner in list(self._runners.values()):
            runner.shutdown()

    # -- scripted mode

    def _advance_script(self, job: TrainingJob, *, settle_stop: bool = True) -> None:
        if job.terminal:
            return
        if job.status == "Stopping":
            if settle_stop:
                self.store.transition(job, "Stopped")
            return
        if job.name in self._capacity_refused:
            self.store.transition(job, "Failed", CAPACITY_ERROR)
            return
        if job.described and not (
            self._faults().stuck_in_queue and job.secondary in ("Starting", "Pending")
        ):
            job.script_position = min(job.script_position + 1, len(job.script) - 1)
        job.described = True
        step = job.script[job.script_position]
        self.store.transition(job, step.status, step.failure_reason)


def _matches(job: TrainingJob, params: Mapping[str, Any]) -> bool:
    name_contains = params.get("NameContains")
    if name_contains and name_contains.lower() not in job.name.lower():
        return False
    status = params.get("StatusEquals")
    if status and job.status != status:
        return False
    bounds = (
        ("CreationTimeAfter", job.created, 1),
        ("CreationTimeBefore", job.created, -1),
        ("LastModifiedTimeAfter", job.last_modified, 1),
        ("LastModifiedTimeBefore", job.last_modified, -1),
    )
    for key, value, direction in bounds:
        if key in params:
            limit = parse_timestamp(params[key])
            if (direction > 0 and value <= limit) or (direction < 0 and value >= limit):
                return False
    return True


_SORT_KEYS: dict[str, Callable[[TrainingJob], tuple[Any, str]]] = {
    "CreationTime": lambda job: (job.created, job.name.lower()),
    "Name": lambda job: (job.name.lower(), job.name.lower()),
    "Status": lambda job: (job.status, job.name.lower()),
}


def _encode_token(sort_by: str, key: tuple[Any, str]) -> str:
    token = {"by": sort_by, "after": list(key)}
    return base64.urlsafe_b64encode(json.dumps(token).encode()).decode()


def _decode_token(token: str | None, sort_by: str) -> tuple[Any, str] | None:
    """The sort key of the last job of the previous page (None: the first page)."""
    if not token:
        return None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
        value, name = decoded["after"]
        by = decoded["by"]
    except (binascii.Error, ValueError, KeyError, TypeError) as error:
        raise validation_error("Invalid pagination token.") from error
    # A token of another sort order (or a forged one) would compare values of other types.
    expected = (int, float) if sort_by == "CreationTime" else (str,)
    if by != sort_by or not isinstance(name, str) or not isinstance(value, expected):
        raise validation_error("Invalid pagination token.")
    return value, name
