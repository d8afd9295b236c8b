"""The ``azureml`` step operator: each step attempt is an Azure ML command job.

The job is named after the step attempt (Azure ML job names are chosen by the client), so a
relaunch finds and adopts it. Statuses come from ``jobs.get``, or, for the launches of one
process waiting together, from one read of the workspace's jobs list (a call per page);
failure text from the run's history (``details.error``); logs from the run's
``user_logs/std_log.txt``, or, for a step of several processes (a PyTorch distribution), from
every ``user_logs/std_log_process_<rank>.txt`` with each line prefixed ``[node R] `` when the
job spans several nodes.
"""

from __future__ import annotations

import json
import math
import re
import shlex
import sys
import threading
from collections.abc import Sequence
from typing import Any

from steplift.errors import ConfigError, StepFailed
from steplift.launch.policy import LaunchPolicy
from steplift.models import JobHandle, JobStatus, LogChunk, StepRunInfo, parse_gpu
from steplift.operator import StepOperator
from steplift.polling import DEFAULT_CLOCK, DEFAULT_SLEEP, Clock, Sleep
from steplift.states import FailureKind, JobState
from steplift.store import ArtifactStore
from steplift_azureml.config import AzureMLStepOperatorConfig
from steplift_azureml.resources import VM_SIZES, resolve_vm_size
from steplift_azureml.store import AzureBlobArtifactStore

JOB_NAME_MAX = 128
MAIN_LOG = "user_logs/std_log.txt"
PROCESS_LOG = re.compile(r"^user_logs/std_log_process_(\d+)\.txt$")
"""The log of one process (by global rank) of a distributed job."""
CHECKPOINT_ENV = "STEPLIFT_CHECKPOINT_DIR"
CHECKPOINT_OUTPUT = "steplift_checkpoints"
# Azure ML replaces ${{outputs.NAME}} in a job's command with where it mounted that output.
CHECKPOINT_PLACEHOLDER = "${{outputs." + CHECKPOINT_OUTPUT + "}}"

STATES: dict[str, JobState] = {
    "NotStarted": JobState.PENDING,
    "Queued": JobState.PENDING,
    "Preparing": JobState.PENDING,
    "Provisioning": JobState.PENDING,
    "Starting": JobState.PENDING,
    "Paused": JobState.PENDING,
    "Running": JobState.RUNNING,
    "Finalizing": JobState.RUNNING,
    "NotResponding": JobState.RUNNING,
    "CancelRequested": JobState.CANCELLING,
    "Completed": JobState.SUCCEEDED,
    "Failed": JobState.FAILED,
    "Canceled": JobState.CANCELLED,
}
ATTEMPT_TAG = "steplift.attempt"
"""The tag every steplift job carries: the jobs list is filtered to jobs that have it."""
_TRANSIENT_HTTP = {408, 429, 500, 502, 503, 504}
_EXIT_CODE = re.compile(r"exited with (?:status )?code (-?\d+)", re.IGNORECASE)


def failure_kind_of(error: dict[str, Any] | None) -> FailureKind:
    """The failure kind of a run-history ``error`` ({"error": {code, message, innerError}})."""
    body = (error or {}).get("error") or {}
    codes = [str(body.get("code") or "")]
    inner = body.get("innerError") or body.get("inner_error")
    while isinstance(inner, dict):
        codes.append(str(inner.get("code") or ""))
        inner = inner.get("innerError") or inner.get("inner_error")
    text = " ".join([*codes, str(body.get("message") or "")]).lower()
    if "quota" in text:
        return FailureKind.QUOTA
    if "allocationfailed" in text or "capacity" in text:
        return FailureKind.CAPACITY
    if "preempt" in text:
        return FailureKind.PREEMPTED
    if "imagepull" in text or "image pull" in text or "docker image" in text:
        return FailureKind.IMAGE
    if "timelimit" in text or "timeout" in text:
        return FailureKind.TIMEOUT
    if "userprocess" in text or "usererror" in text or _EXIT_CODE.search(text):
        return FailureKind.USER_CODE
    return FailureKind.INFRASTRUCTURE


def provider_state_of(status: Any) -> str:
    """A job's status as Azure ML names it, from an SDK enum or the REST string."""
    return str(getattr(status, "value", status) or "NotStarted")


def status_from_state(provider_state: str) -> JobStatus | None:
    """The status of a job in ``provider_state``, or None for ``Failed``: why it failed is
    in the run's history, which only :meth:`AzureMLStepOperator.get_status` reads."""
    state = STATES.get(provider_state, JobState.PENDING)
    if state is JobState.FAILED:
        return None
    message = "the job is not responding" if provider_state == "NotResponding" else ""
    return JobStatus(state=state, provider_state=provider_state, message=message)


def _retry_after(error: Any) -> float | None:
    response = getattr(error, "response", None)
    headers = {k.lower(): v for k, v in (getattr(response, "headers", None) or {}).items()}
    for name, scale in (
        ("retry-after-ms", 1000.0),
        ("x-ms-retry-after-ms", 1000.0),
        ("retry-after", 1.0),
    ):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) / scale)
            except ValueError:
                return None
    return None


class AzureMLStepOperator(StepOperator[AzureMLStepOperatorConfig]):
    """Runs step attempts as Azure ML command jobs through ``azure-ai-ml``.

    Concurrent launches of one operator share their status polls: one read of the jobs list
    (a call per page) answers every job it shows, and a job that failed is asked about on its
    own, which also reads its error.
    """

    multi_node = True  # instance_count nodes, a PyTorch distribution starts the processes
    launch_policy = LaunchPolicy(batched_status=True)

    cancel_wait: float = 5.0
    """Seconds to wait for the service to accept a cancel request."""

    def __init__(
        self,
        config: AzureMLStepOperatorConfig,
        *,
        name: str = "default",
        clock: Clock = DEFAULT_CLOCK,
        sleep: Sleep = DEFAULT_SLEEP,
        policy: LaunchPolicy | None = None,
        credential: Any = None,
        ml_client: Any = None,
        create_client: Any = None,
    ) -> None:
        super().__init__(config, name=name, clock=clock, sleep=sleep, policy=policy)
        self._credential = credential
        self._ml_client = ml_client
        self._create_client = create_client
        self._history: Any = None
        self._jobs_list: Any = None
        self._store = AzureBlobArtifactStore(storage_suffix=config.storage_suffix)
        self._errors: dict[str, dict[str, Any] | None] = {}
        self._layouts: dict[str, tuple[int, int]] = {}
        self._client_lock = threading.RLock()

    @property
    def flavor(self) -> str:
        return "azureml"

    @property
    def artifact_store(self) -> ArtifactStore:
        return self._store

    @property
    def artifact_root(self) -> str:
        return self.config.artifact_root

    # -- clients (built on first use; importing this module imports no Azure SDK) -----------

    @property
    def ml_client(self) -> Any:
        """The ``azure.ai.ml.MLClient`` for the configured workspace."""
        with self._client_lock:
            if self._ml_client is None:
                from steplift_azureml.client import make_credential, make_ml_client

                if self._credential is None:
                    self._credential = make_credential(self.config)
                self._ml_client = make_ml_client(self.config, self._credential)
            return self._ml_client

    @property
    def credential(self) -> Any:
        """The Azure credential (made from the config on first use unless one was given)."""
        self.ml_client  # noqa: B018 - makes the credential
        return self._credential

    def share_clients(self) -> dict[str, Any]:
        """Keyword arguments that let another operator reuse this one's clients."""
        return {
            "credential": self.credential,
            "ml_client": self.ml_client,
            "create_client": self.create_client,
        }

    @property
    def create_client(self) -> Any:
        """An ``MLClient`` without transport retries, used only to create jobs."""
        self.ml_client  # noqa: B018 - makes the credential
        with self._client_lock:
            if self._create_client is None:
                from steplift_azureml.client import make_ml_client

                self._create_client = make_ml_client(self.config, self._credential, retries=False)
            return self._create_client

    @property
    def run_history(self) -> Any:
        """The workspace's run-history client."""
        client = self.ml_client
        with self._client_lock:
            if self._history is None:
                from steplift_azureml.client import RunHistory

                self._history = RunHistory(self.config, self._credential, client)
            return self._history

    @property
    def jobs_list(self) -> Any:
        """The workspace's jobs list, read as raw pages (a ``client.JobsList``)."""
        self.ml_client  # noqa: B018 - makes the credential
        with self._client_lock:
            if self._jobs_list is None:
                from steplift_azureml.client import JobsList

                self._jobs_list = JobsList(self.config, self._credential)
            return self._jobs_list

    # -- what a job asks for ----------------------------------------------------------------

    def checkpoint_dir(self, info: StepRunInfo) -> str | None:
        """Where the job sees its checkpoint folder: a datastore folder per step, mounted
        read-write, so every attempt of the step sees the same files."""
        return CHECKPOINT_PLACEHOLDER if self.config.checkpoint_datastore else None

    def checkpoint_uri(self, info: StepRunInfo) -> str:
        """The datastore folder that holds a step's checkpoints (all attempts)."""
        config = self.config
        return (
            f"azureml://datastores/{config.checkpoint_datastore}/paths/{config.checkpoint_path}"
            f"/{info.pipeline}/{info.run}/{info.step}"
        )

    def job_name(self, info: StepRunInfo) -> str:
        """The Azure ML job name of a step attempt (deterministic)."""
        return info.job_name(max_length=JOB_NAME_MAX, allowed="A-Za-z0-9_-")

    def placement(self, info: StepRunInfo) -> dict[str, Any]:
        """compute / instance_type / job_tier / instance_count for a step; ConfigError early.

        A GPU step runs on the cluster configured for its GPU type, else serverless on the
        smallest VM size with those GPUs. A CPU step runs on ``compute`` when set, else
        serverless on ``instance_type`` (or the smallest size with the CPU/memory asked for).
        """
        config = self.config
        resources = info.resources
        spot = resources.use_spot(config.spot)
        gpu = resources.gpu or config.gpu
        if config.instance_count not in (1, resources.nodes):
            # The entrypoint would find a cluster of another size than the step asked for.
            raise ConfigError(
                f"instance_count = {config.instance_count} would run this step on "
                f"{config.instance_count} nodes, but it asks for {resources.nodes}; ask for "
                "nodes on the step (Resources(nodes=N), --nodes N) instead",
                field="instance_count",
                value=config.instance_count,
                has_value=True,
            )
        placement: dict[str, Any] = {"instance_count": resources.nodes}
        if gpu and gpu.split(":")[0].upper() in config.gpu_clusters:
            cluster = config.gpu_clusters[gpu.split(":")[0].upper()]
            placement["compute"] = config.spot_compute if spot and config.spot_compute else cluster
            return placement
        if not gpu and config.compute:
            if spot and not config.spot_compute:
                raise ConfigError(
                    "a spot step on a cluster needs spot_compute (a low-priority cluster)",
                    field="spot_compute",
                )
            placement["compute"] = config.spot_compute if spot else config.compute
            return placement
        size = resolve_vm_size(resources.model_copy(update={"gpu": gpu}))
        if size is not None:
            placement["instance_type"] = size.name
        elif config.instance_type:
            placement["instance_type"] = config.instance_type
        else:
            raise ConfigError(
                "no compute for this step: set compute (a cluster), or instance_type or gpu "
                "(serverless)",
                field="compute",
            )
        tier = "Spot" if spot else config.job_tier
        if tier:
            placement["job_tier"] = tier
        return placement

    def gpus_per_node(self, info: StepRunInfo) -> int:
        """GPUs of each node: the step's or the config's GPU request, else the VM size's."""
        gpu = info.resources.gpu or self.config.gpu
        if gpu:
            return parse_gpu(gpu)[1]
        name = self.placement(info).get("instance_type")
        return next((size.gpu_count for size in VM_SIZES if size.name == name), 0)

    def check_step(self, info: StepRunInfo) -> None:
        """Refuse, before any call, a step Azure ML cannot run as asked: everything
        :meth:`placement` refuses (a GPU no VM size has, spot on a cluster without
        ``spot_compute``, a configured ``instance_count`` other than the step's nodes)."""
        super().check_step(info)
        self.placement(info)

    def build_job(
        self, info: StepRunInfo, entrypoint_command: list[str], environment: dict[str, str]
    ) -> Any:
        """The ``azure.ai.ml`` command job for a step attempt (no call is made)."""
        placement = self.placement(info)
        config = self.config
        from azure.ai.ml import command
        from azure.ai.ml.entities import (
            AmlTokenConfiguration,
            Environment,
            ManagedIdentityConfiguration,
            UserIdentityConfiguration,
        )

        image = info.image or config.image
        environment_ref: Any = Environment(image=image) if image else config.environment_name
        identity: Any = {
            "user_identity": UserIdentityConfiguration,
            "managed": ManagedIdentityConfiguration,
            "aml_token": AmlTokenConfiguration,
        }.get(config.identity or "", lambda: None)()
        max_runtime = info.max_runtime or config.max_runtime
        tags = {
            **config.tags,
            **info.tags,
            "steplift.attempt": info.attempt_key,
            "steplift.pipeline": info.pipeline,
            "steplift.run": info.run,
            "steplift.step": info.step,
        }
        command_line = list(entrypoint_command)
        environment = dict(environment)
        outputs: dict[str, Any] = {}
        if environment.get(CHECKPOINT_ENV) == CHECKPOINT_PLACEHOLDER:
            from azure.ai.ml import Output

            # Environment variables are not substituted, the command is: set it there.
            del environment[CHECKPOINT_ENV]
            command_line = ["env", f"{CHECKPOINT_ENV}={CHECKPOINT_PLACEHOLDER}", *command_line]
            outputs[CHECKPOINT_OUTPUT] = Output(
                type="uri_folder", path=self.checkpoint_uri(info), mode="rw_mount"
            )
        distribution: Any = None
        processes = self.processes_per_node(info)
        if info.resources.nodes * processes > 1:
            from azure.ai.ml import PyTorchDistribution

            # Azure ML starts the processes of every node and sets the torch variables in
            # each (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, ...): the entrypoint then runs
            # the step once per process, as on every flavor.
            distribution = PyTorchDistribution(process_count_per_instance=processes)
        return command(
            name=self.job_name(info),
            display_name=f"{info.step} ({info.run})",
            experiment_name=config.experiment_name,
            command=shlex.join(command_line),
            outputs=outputs or None,
            environment=environment_ref,
            environment_variables=dict(environment),
            compute=placement.get("compute"),
            instance_type=placement.get("instance_type"),
            instance_count=placement["instance_count"],
            job_tier=placement.get("job_tier"),
            timeout=math.ceil(max_runtime) if max_runtime else None,
            identity=identity,
            distribution=distribution,
            tags=tags,
        )

    def _handle(self, name: str, info: StepRunInfo) -> JobHandle:
        config = self.config
        extra = {
            "subscription_id": config.subscription_id,
            "resource_group": config.resource_group,
            "workspace": config.workspace,
        }
        processes = self.processes_per_node(info)
        if info.resources.nodes * processes > 1:
            # How to read the per-process logs back (global rank -> node) without a call.
            extra["nodes"] = str(info.resources.nodes)
            extra["processes_per_node"] = str(processes)
        return JobHandle(flavor="azureml", job_id=name, name=name, extra=extra)

    # -- the primitives ---------------------------------------------------------------------

    def submit(
        self, info: StepRunInfo, entrypoint_command: list[str], environment: dict[str, str]
    ) -> JobHandle:
        job = self.build_job(info, entrypoint_command, environment)
        from azure.core.exceptions import (
            HttpResponseError,
            ServiceRequestError,
            ServiceResponseError,
        )

        name = job.name
        try:
            # One create, without transport retries: the shared launch loop retries a
            # transient failure (throttling, 5xx, a lost connection) itself, within its
            # budget, and only after find_job says the job was not created after all.
            self.create_client.jobs.create_or_update(job)
        except HttpResponseError as error:
            status = error.status_code or 0
            if status == 409:
                existing = self.find_job(info)
                if existing is not None:
                    return existing
            if self.is_transient_error(error):
                raise
            kind = failure_kind_of({"error": _error_dict(error)})
            if kind is FailureKind.QUOTA:
                raise StepFailed(
                    f"Azure ML refused job {name}: {_error_message(error)}",
                    failure_kind=FailureKind.QUOTA,
                    provider_state=str(status),
                ) from None
            raise StepFailed(
                f"Azure ML refused job {name} ({status}): {_error_message(error)}",
                failure_kind=FailureKind.INFRASTRUCTURE,
                provider_state=str(status),
            ) from None
        except (ServiceRequestError, ServiceResponseError):
            raise  # transient: the shared launch loop looks for the job, then tries again
        return self._handle(name, info)

    def warm_up(self) -> None:
        self.ml_client  # noqa: B018 - imports azure.ai.ml and builds the MLClient

    def is_transient_error(self, error: Exception) -> bool:
        """Throttling, 5xx and lost connections (after azure-core's own retries)."""
        exceptions = sys.modules.get("azure.core.exceptions")
        if exceptions is None:
            return False
        if isinstance(error, exceptions.ServiceRequestError | exceptions.ServiceResponseError):
            return True
        if isinstance(error, exceptions.HttpResponseError):
            return (error.status_code or 0) in _TRANSIENT_HTTP
        return False

    def find_job(self, info: StepRunInfo) -> JobHandle | None:
        from azure.core.exceptions import ResourceNotFoundError

        name = self.job_name(info)
        try:
            self.ml_client.jobs.get(name)
        except ResourceNotFoundError:
            return None
        return self._handle(name, info)

    def get_status(self, handle: JobHandle) -> JobStatus:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            job = self.ml_client.jobs.get(handle.job_id)
        except ResourceNotFoundError:
            return JobStatus(
                state=JobState.FAILED,
                provider_state="NotFound",
                message=f"Azure ML has no job {handle.job_id} in workspace {self.config.workspace}",
                failure_kind=FailureKind.INFRASTRUCTURE,
            )
        provider_state = provider_state_of(job.status)
        status = status_from_state(provider_state)
        if status is not None:
            return status
        error = self._terminal_error(handle)
        body = (error or {}).get("error") or {}
        message = str(body.get("message") or "the job failed")
        exit_match = _EXIT_CODE.search(message)
        return JobStatus(
            state=JobState.FAILED,
            provider_state=provider_state,
            message=message,
            failure_kind=failure_kind_of(error),
            exit_code=int(exit_match.group(1)) if exit_match else None,
        )

    def get_statuses(self, handles: Sequence[JobHandle]) -> dict[str, JobStatus]:
        """The statuses the workspace's jobs list shows for ``handles``, by job id.

        The list is filtered to steplift's jobs (the ``steplift.attempt`` tag) and read page by
        page until every job was seen, or until reading on would cost more calls than asking
        about each unseen job alone. Failed jobs and jobs not seen are left out: each is then
        asked about on its own. Errors propagate as a ``jobs.get``'s would, except a 404
        (no such workspace), which leaves every job to its own get.
        """
        from azure.core.exceptions import HttpResponseError

        wanted = {handle.job_id.lower(): handle.job_id for handle in handles}
        if not wanted:
            return {}
        seen: set[str] = set()
        statuses: dict[str, JobStatus] = {}
        pages = self.jobs_list.pages(listViewType="ActiveOnly", tag=ATTEMPT_TAG)
        try:
            for read, page in enumerate(pages, start=1):
                for entry in page:
                    job_id = wanted.get(str(entry.get("name") or "").lower())
                    if job_id is None or job_id in seen:
                        continue
                    seen.add(job_id)
                    properties = entry.get("properties") or {}
                    status = status_from_state(provider_state_of(properties.get("status")))
                    if status is not None:
                        statuses[job_id] = status
                unseen = len(wanted) - len(seen)
                if unseen == 0 or read >= unseen:
                    break
        except HttpResponseError as error:
            if error.status_code != 404:
                raise
            return {}
        finally:
            pages.close()
        return statuses

    def _terminal_error(self, handle: JobHandle) -> dict[str, Any] | None:
        with self._client_lock:
            if handle.job_id in self._errors:
                return self._errors[handle.job_id]
        error = self.run_history.run_details(handle.job_id).get("error")
        with self._client_lock:
            self._errors[handle.job_id] = error
        return error if isinstance(error, dict) else None

    def cancel(self, handle: JobHandle) -> None:
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        try:
            poller = self.ml_client.jobs.begin_cancel(handle.job_id)
        except ResourceNotFoundError:
            return
        except HttpResponseError:
            # Azure refuses to cancel a job that already ended; anything else is real.
            if self.get_status(handle).state.is_terminal:
                return
            raise
        # The service answers 202 and a Location to poll; wait (bounded) for it to accept.
        poller.wait(timeout=self.cancel_wait)

    def read_logs(self, handle: JobHandle, cursor: str | None) -> LogChunk:
        files = self.run_history.run_details(handle.job_id).get("logFiles") or {}
        processes = {
            int(match.group(1)): url
            for name, url in files.items()
            if (match := PROCESS_LOG.match(name)) is not None
        }
        per_rank = cursor is not None and cursor.startswith("{")
        if not processes:
            if MAIN_LOG not in files:
                return LogChunk([], cursor)
            lines, offset = self._read_lines(files[MAIN_LOG], 0 if per_rank else int(cursor or 0))
            return LogChunk(lines, str(offset))
        # A distributed job: one log per process; the cursor holds an offset per rank.
        offsets: dict[str, int] = json.loads(cursor) if cursor is not None and per_rank else {}
        nodes, per_node = self._layout(handle)
        lines = []
        for rank in sorted(processes):
            new_lines, offsets[str(rank)] = self._read_lines(
                processes[rank], offsets.get(str(rank), 0)
            )
            prefix = f"[node {rank // per_node}] " if nodes > 1 else ""
            lines += [prefix + line for line in new_lines]
        return LogChunk(lines, json.dumps(offsets, sort_keys=True))

    def _read_lines(self, url: str, offset: int) -> tuple[list[str], int]:
        """The whole lines of a log file after ``offset`` and the offset after them."""
        data = self.run_history.read_from(url, offset)
        complete = data.rfind(b"\n") + 1  # whole lines only; the rest comes next time
        return data[:complete].decode("utf-8", errors="replace").splitlines(), offset + complete

    def _layout(self, handle: JobHandle) -> tuple[int, int]:
        """(nodes, processes per node) of a distributed job: from the handle, else the job."""
        try:
            return int(handle.extra["nodes"]), max(int(handle.extra["processes_per_node"]), 1)
        except (KeyError, ValueError):
            pass
        with self._client_lock:
            if handle.job_id in self._layouts:
                return self._layouts[handle.job_id]
        job = self.ml_client.jobs.get(handle.job_id)
        nodes = getattr(getattr(job, "resources", None), "instance_count", None) or 1
        per_node = getattr(getattr(job, "distribution", None), "process_count_per_instance", None)
        layout = (int(nodes), max(int(per_node or 1), 1))
        with self._client_lock:
            self._layouts[handle.job_id] = layout
        return layout


def _error_dict(error: Any) -> dict[str, Any]:
    inner = getattr(error, "error", None)
    code = getattr(inner, "code", None) or getattr(error, "error_code", None) or ""
    result: dict[str, Any] = {"code": code, "message": _error_message(error)}
    inner_error = getattr(inner, "innererror", None) or getattr(inner, "inner_error", None)
    if isinstance(inner_error, dict):
        result["innerError"] = inner_error
    try:
        body = error.response.json()
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            result = body["error"]
    except Exception:  # not JSON: keep what the exception says
        pass
    return result


def _error_message(error: Any) -> str:
    inner = getattr(error, "error", None)
    message = getattr(inner, "message", None) or getattr(error, "message", None) or str(error)
    return str(message).splitlines()[0]
