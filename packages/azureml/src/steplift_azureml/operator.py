"""The ``azureml`` step operator: each step attempt is an Azure ML command job.

The job is named after the step attempt (Azure ML job names are chosen by the client), so a
relaunch finds and adopts it. The primitives here make the calls; what they send and how
they read the answers live beside them: the job body in :mod:`~steplift_azureml.requests`,
states and errors in :mod:`~steplift_azureml.status`, logs in :mod:`~steplift_azureml.logs`,
the clients in :mod:`~steplift_azureml.clients`. Statuses come from ``jobs.get``, or, for the
launches of one process waiting together, from one read of the workspace's jobs list (a
call per page); failure text from the run's history (``details.error``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from steplift.cost import JobUsage, PriceKey
from steplift.errors import StepFailed
from steplift.launch.paging import collect_statuses
from steplift.launch.policy import LaunchPolicy
from steplift.models import JobHandle, JobStatus, LogChunk, StepRunInfo
from steplift.operator import StepOperator
from steplift.polling import DEFAULT_CLOCK, DEFAULT_SLEEP, Clock, Sleep
from steplift.states import FailureKind
from steplift.store import ArtifactStore
from steplift_azureml import clients, logs, requests, status
from steplift_azureml.config import AzureMLStepOperatorConfig
from steplift_azureml.store import AzureBlobArtifactStore

_OUTPUT_MODES = {"ReadWriteMount": "rw_mount", "ReadOnlyMount": "ro_mount", "Upload": "upload"}
"""A REST output ``mode`` → the name ``azure.ai.ml.Output`` takes."""


def command_job(request: dict[str, Any]) -> Any:
    """The ``azure.ai.ml`` command job that sends ``request`` (:func:`requests.build_request`)."""
    from azure.ai.ml import Output, PyTorchDistribution, command
    from azure.ai.ml.entities import (
        AmlTokenConfiguration,
        Environment,
        ManagedIdentityConfiguration,
        UserIdentityConfiguration,
    )

    properties = request["properties"]
    image = (request.get("environment") or {}).get("image")
    resources = properties["resources"]
    outputs = {
        name: Output(
            type=output["jobOutputType"], path=output["uri"], mode=_OUTPUT_MODES[output["mode"]]
        )
        for name, output in (properties.get("outputs") or {}).items()
    }
    identity_type = str((properties.get("identity") or {}).get("identityType"))
    identity: Any = {
        "UserIdentity": UserIdentityConfiguration,
        "Managed": ManagedIdentityConfiguration,
        "AMLToken": AmlTokenConfiguration,
    }.get(identity_type, lambda: None)()
    distribution = properties.get("distribution")
    limits = properties.get("limits")
    compute_id = properties.get("computeId")
    return command(
        name=request["name"],
        display_name=properties["displayName"],
        experiment_name=properties["experimentName"],
        command=properties["command"],
        outputs=outputs or None,
        environment=Environment(image=image) if image else properties.get("environmentId"),
        environment_variables=properties["environmentVariables"],
        # The client resolves a cluster's name to its id, as it does for any job.
        compute=compute_id.rsplit("/", 1)[-1] if compute_id else None,
        instance_type=resources.get("instanceType"),
        instance_count=resources["instanceCount"],
        job_tier=(properties.get("queueSettings") or {}).get("jobTier"),
        timeout=requests.duration_seconds(limits["timeout"]) if limits else None,
        identity=identity,
        distribution=(
            PyTorchDistribution(process_count_per_instance=distribution["processCountPerInstance"])
            if distribution
            else None
        ),
        tags=properties["tags"],
    )


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

    # -- clients (clients.py; built on first use: importing this module imports no Azure SDK) --

    @property
    def ml_client(self) -> Any:
        """The ``azure.ai.ml.MLClient`` for the configured workspace."""
        with self._client_lock:
            if self._ml_client is None:
                if self._credential is None:
                    self._credential = clients.make_credential(self.config)
                self._ml_client = clients.make_ml_client(self.config, self._credential)
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
                self._create_client = clients.make_ml_client(
                    self.config, self._credential, retries=False
                )
            return self._create_client

    @property
    def run_history(self) -> Any:
        """The workspace's run-history client."""
        client = self.ml_client
        with self._client_lock:
            if self._history is None:
                self._history = clients.RunHistory(self.config, self._credential, client)
            return self._history

    @property
    def jobs_list(self) -> Any:
        """The workspace's jobs list, read as raw pages (a ``clients.JobsList``)."""
        self.ml_client  # noqa: B018 - makes the credential
        with self._client_lock:
            if self._jobs_list is None:
                self._jobs_list = clients.JobsList(self.config, self._credential)
            return self._jobs_list

    # -- what a job asks for (requests.py) ----------------------------------------------------

    def checkpoint_dir(self, info: StepRunInfo) -> str | None:
        """Where the job sees its checkpoint folder: a datastore folder per step, mounted
        read-write, so every attempt of the step sees the same files."""
        return requests.CHECKPOINT_PLACEHOLDER if self.config.checkpoint_datastore else None

    def job_name(self, info: StepRunInfo) -> str:
        """The Azure ML job name of a step attempt (deterministic)."""
        return requests.job_name(info)

    def gpus_per_node(self, info: StepRunInfo) -> int:
        """GPUs of each node: the step's or the config's GPU request, else the VM size's."""
        return requests.gpus_per_node(self.config, info)

    def check_step(self, info: StepRunInfo) -> None:
        """Refuse, before any call, a step Azure ML cannot run as asked: everything
        :func:`~steplift_azureml.requests.placement` refuses (a GPU no VM size has, spot on a
        cluster without ``spot_compute``, a configured ``instance_count`` other than the
        step's nodes)."""
        super().check_step(info)
        requests.placement(self.config, info)

    def build_job(
        self, info: StepRunInfo, entrypoint_command: list[str], environment: dict[str, str]
    ) -> Any:
        """The ``azure.ai.ml`` command job for a step attempt (no call is made)."""
        request = requests.build_request(self.config, info, entrypoint_command, environment)
        return command_job(request)

    def describe_request(
        self, info: StepRunInfo, entrypoint_command: list[str], environment: dict[str, str]
    ) -> dict[str, Any]:
        """The job ``submit`` would create, as its REST body (no call)."""
        return requests.build_request(self.config, info, entrypoint_command, environment)

    def price_key(self, info: StepRunInfo) -> PriceKey:
        """One VM of the step's size per node, in the config's ``region``. A step on a
        cluster has no known size here (no parts): it needs a ``price_per_hour``."""
        chosen = requests.placement(self.config, info)
        size = chosen.get("instance_type")
        parts = ((str(size), 1),) if size else ()
        spot = info.resources.use_spot(self.config.spot)
        return PriceKey("steplift_azureml", self.config.region, parts, spot)

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
            code = error.status_code or 0
            if code == 409:
                existing = self.find_job(info)
                if existing is not None:
                    return existing
            if self.is_transient_error(error):
                raise
            message = clients.error_message(error)
            kind = status.failure_kind_of({"error": clients.error_body(error)})
            if kind is FailureKind.QUOTA:
                raise StepFailed(
                    f"Azure ML refused job {name}: {message}",
                    failure_kind=FailureKind.QUOTA,
                    provider_state=str(code),
                ) from None
            raise StepFailed(
                f"Azure ML refused job {name} ({code}): {message}",
                failure_kind=FailureKind.INFRASTRUCTURE,
                provider_state=str(code),
            ) from None
        except (ServiceRequestError, ServiceResponseError):
            raise  # transient: the shared launch loop looks for the job, then tries again
        return self._handle(name, info)

    def warm_up(self) -> None:
        self.ml_client  # noqa: B018 - imports azure.ai.ml and builds the MLClient

    def is_transient_error(self, error: Exception) -> bool:
        """Throttling, 5xx and lost connections (after azure-core's own retries)."""
        return clients.is_transient_error(error)

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
            return status.status_of_missing_job(handle.job_id, self.config.workspace)
        provider_state = status.provider_state_of(job.status)
        known = status.status_from_state(provider_state)
        if known is not None:
            return known
        return status.status_from_failure(provider_state, self._terminal_error(handle))

    def get_statuses(self, handles: Sequence[JobHandle]) -> dict[str, JobStatus]:
        """The statuses the workspace's jobs list shows for ``handles``, by job id.

        The list is filtered to steplift's jobs (the ``steplift.attempt`` tag) and read page by
        page until every job was seen, or until reading on would cost more calls than asking
        about each unseen job alone. Failed jobs and jobs not seen are left out: each is then
        asked about on its own. Errors propagate as a ``jobs.get``'s would, except a 404
        (no such workspace), which leaves every job to its own get.
        """
        from azure.core.exceptions import HttpResponseError

        if not handles:
            return {}
        pages = self.jobs_list.pages(listViewType="ActiveOnly", tag=requests.ATTEMPT_TAG)
        try:
            return collect_statuses(
                [handle.job_id for handle in handles],
                pages,
                lambda entry: str(entry.get("name") or ""),
                status.status_from_entry,
                bounded=True,
            )
        except HttpResponseError as error:
            if error.status_code != 404:
                raise
            return {}
        finally:
            pages.close()

    def job_usage(self, handle: JobHandle) -> JobUsage | None:
        """The run history's ``startTimeUtc`` and ``endTimeUtc`` of the job (Azure ML reports
        no billable time)."""
        details = self.run_history.run_details(handle.job_id)
        return JobUsage(
            started=_epoch(details.get("startTimeUtc")),
            ended=_epoch(details.get("endTimeUtc")),
            source="Azure ML",
        )

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
        return logs.read_job_logs(
            self.run_history, handle.job_id, cursor, lambda: self._layout(handle)
        )

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


def _epoch(value: Any) -> float | None:
    """An ISO 8601 time of the run history (``2026-12-06T03:25:50.123Z``) as epoch seconds."""
    if not isinstance(value, str) or not value:
        return None
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
