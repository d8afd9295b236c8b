"""The SageMaker API as the emulator serves it: the AWS JSON 1.1 surface and its handlers.

Requests carry ``X-Amz-Target: <prefix>.<Operation>`` and a JSON body. :class:`SageMakerLayer`
is the WSGI app in front of moto: every SageMaker and CloudWatch Logs client call is recorded,
SageMaker calls are then subject to the fault decider, and the training-job operations are
answered by :class:`TrainingJobService`; everything else (S3, CloudWatch Logs, Secrets Manager,
other SageMaker operations) goes to moto. (moto's own ListTrainingJobs cuts its page before
filtering, knows no SecondaryStatus and reports every job Completed.)
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import io
import itertools
import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from steplift.testing.emulation import EmulatorMode, FaultKind, Faults, ScriptStep

from .errors import (
    JSON_CONTENT_TYPE,
    REASONS,
    ApiError,
    StartResponse,
    fault_error,
    quota_error,
    respond_error,
    validation_error,
)
from .jobs import (
    CAPACITY_ERROR,
    DEFAULT_SCRIPT,
    EmulatedJob,
    JobRunner,
    JobStore,
    RunContext,
    check_script,
)
from .logs import keep_stream_prefix
from .storage import INTERNAL_ENVIRON_KEY
from .validation import validate_against_model, validate_create_training_job

SERVICE_BY_TARGET_PREFIX = {"SageMaker": "sagemaker", "Logs_20140328": "logs"}
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


# -- the wire protocol


def read_body(environ: dict[str, Any]) -> bytes:
    """Read the whole request body and put it back so the next WSGI app can read it too."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body: bytes = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def parse_target(environ: dict[str, Any]) -> tuple[str, str] | None:
    """(service, operation) for a JSON-protocol call of a service we watch, else None."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    prefix, _, operation = target.partition(".")
    service = SERVICE_BY_TARGET_PREFIX.get(prefix)
    if service is None or not operation:
        return None
    return service, operation


def parse_params(body: bytes) -> dict[str, Any]:
    """The call's parameters; a malformed body is a SerializationException like AWS says."""
    try:
        params = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ApiError("SerializationException", f"Malformed request body: {error}") from error
    if not isinstance(params, dict):
        raise ApiError("SerializationException", "Request body must be a JSON object")
    return params


def parse_timestamp(value: Any) -> float:
    """A JSON-protocol timestamp (epoch seconds, or ISO 8601 from other SDKs) as epoch."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as error:
            raise ApiError("SerializationException", f"Invalid timestamp: {value}") from error
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return parsed.timestamp()
    raise ApiError("SerializationException", f"Invalid timestamp: {value!r}")


def respond(start_response: StartResponse, status: int, body: Any) -> Iterable[bytes]:
    """A JSON-protocol response."""
    payload = json.dumps(body).encode()
    start_response(
        f"{status} {REASONS.get(status, 'Error')}",
        [
            ("Content-Type", JSON_CONTENT_TYPE),
            ("Content-Length", str(len(payload))),
            ("x-amzn-RequestId", str(uuid.uuid4())),
        ],
    )
    return [payload]


# -- the WSGI app in front of moto


class _Recorder(Protocol):
    def record(self, service: str, operation: str, params: dict[str, Any]) -> None: ...

    def decide_fault(self, operation: str) -> FaultKind | None: ...


class SageMakerLayer:
    """The emulator's WSGI app around moto's."""

    def __init__(self, emulator: _Recorder, service: TrainingJobService, moto_app: WSGIApp) -> None:
        self.emulator = emulator
        self.service = service
        self.moto_app = moto_app
        self._errors = itertools.count()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        target = parse_target(environ)
        if target is None or environ.get(INTERNAL_ENVIRON_KEY):
            return self.moto_app(environ, start_response)
        service, operation = target
        try:
            params = parse_params(read_body(environ))
        except ApiError as error:
            return respond_error(start_response, error)
        self.emulator.record(service, operation, params)
        if service != "sagemaker":
            prefix = params.get("logStreamNamePrefix")
            if operation == "FilterLogEvents" and isinstance(prefix, str) and prefix:
                return self._filter_log_events(environ, start_response, prefix)
            return self.moto_app(environ, start_response)
        fault = self.emulator.decide_fault(operation)
        if fault is not None:
            return respond_error(start_response, fault_error(fault, next(self._errors)))
        handler = self.service.handlers.get(operation)
        if handler is None:
            return self.moto_app(environ, start_response)
        try:
            answer = handler(params)
        except ApiError as error:
            return respond_error(start_response, error)
        if answer is None:
            return self.moto_app(environ, start_response)
        return respond(start_response, 200, answer)

    def _filter_log_events(
        self, environ: dict[str, Any], start_response: Callable[..., Any], prefix: str
    ) -> Iterable[bytes]:
        """moto's FilterLogEvents answer, narrowed to the streams of ``prefix``."""
        captured: list[Any] = []
        chunks: list[bytes] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured[:] = [status, headers]
            return chunks.append

        result = self.moto_app(environ, capture)
        try:
            chunks.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = captured
        body = b"".join(chunks)
        if status.startswith("200"):
            body = json.dumps(keep_stream_prefix(json.loads(body), prefix)).encode()
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return [body]


# -- the training-job operations


Handler = Callable[[dict[str, Any]], "dict[str, Any] | None"]


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
        job = EmulatedJob(
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

    def _advance_script(self, job: EmulatedJob, *, settle_stop: bool = True) -> None:
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


def _matches(job: EmulatedJob, params: Mapping[str, Any]) -> bool:
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


_SORT_KEYS: dict[str, Callable[[EmulatedJob], tuple[Any, str]]] = {
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
