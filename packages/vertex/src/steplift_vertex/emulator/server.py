"""`VertexEmulator`: Vertex AI customJobs, Cloud Logging entries:list, Secret Manager and Cloud
Storage on 127.0.0.1, for the unmodified google-cloud clients.

The Vertex, Logging and Secret Manager routes (:mod:`~steplift_vertex.emulator.service`) are
served here (standard library WSGI server, one thread per request, Nagle off); Cloud Storage
(:mod:`~steplift_vertex.emulator.storage`) runs on its own port.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

from steplift.emulation.images import ImageRegistry
from steplift.testing.emulation import (
    ControlAPI,
    EmulatorBase,
    EmulatorMode,
    LocalServer,
    ScriptStep,
)
from steplift_vertex.emulator.jobs import JobTable
from steplift_vertex.emulator.logs import LogBook
from steplift_vertex.emulator.secrets import SecretStore
from steplift_vertex.emulator.service import VertexService
from steplift_vertex.emulator.storage import HOST, StorageServer
from steplift_vertex.requests import KEY_LABEL

DEFAULT_PROJECT = "steplift-emulator"
DEFAULT_BUCKET = "steplift-staging"
DEFAULT_LOCATION = "us-central1"


class VertexEmulator(EmulatorBase):
    """Vertex AI CustomJobs (+ Logging, + Secret Manager, + GCS) on 127.0.0.1.

    ``mode="execute"`` runs every replica of each job as a local process; ``"scripted"`` moves
    a job one step per status read, a ``get`` of it or a ``list`` page showing it (see
    :meth:`script`). ``buckets`` are created in the GCS emulator (``gcs=False`` serves no
    storage, e.g. without the ``emulator`` extra); ``stop_grace`` is how long a stopped
    replica gets between SIGTERM and SIGKILL. A job's replicas run as containers of their
    pool's imageUri: ``images`` says which local Python environment an image URI stands for
    (others: the stock image).
    """

    flavor: ClassVar[str] = "vertex"

    service_name = "aiplatform"

    def __init__(
        self,
        mode: EmulatorMode = "execute",
        *,
        port: int = 0,
        project: str = DEFAULT_PROJECT,
        buckets: Sequence[str] = (DEFAULT_BUCKET,),
        gcs: bool = True,
        gcs_port: int = 0,
        stop_grace: float = 2.0,
    ) -> None:
        super().__init__(mode)
        self.port = port
        self.project = project
        self.buckets = tuple(buckets)
        self.gcs = gcs
        self.gcs_port = gcs_port
        self.logbook = LogBook()
        self.images = ImageRegistry()
        """Image URIs → local Python environments; any other image runs as the stock one."""
        self.jobs = JobTable(mode, self, self.logbook.append, images=self.images, grace=stop_grace)
        self.secrets = SecretStore()
        self._server: LocalServer | None = None
        self._storage = StorageServer(self.buckets, port=gcs_port)

    # -- endpoints -----------------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        """http://127.0.0.1:PORT of the Vertex AI, Logging and Secret Manager API."""
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return self._server.url

    @property
    def storage_url(self) -> str | None:
        """http://127.0.0.1:PORT of the GCS emulator (None without GCS)."""
        return self._storage.url

    def client_env(self) -> dict[str, str]:
        """What a client process needs: project, storage endpoint, no proxy for 127.0.0.1."""
        env = {"GOOGLE_CLOUD_PROJECT": self.project, "NO_PROXY": f"{HOST},localhost"}
        if self.storage_url:
            env["STORAGE_EMULATOR_HOST"] = self.storage_url
        return env

    def job_env(self) -> dict[str, str]:
        """What an emulated job's container sees of the emulated cloud."""
        return self.client_env()

    def operator_config(self, **fields: Any) -> dict[str, Any]:
        """The ``vertex`` operator config that points at this emulator (``"flavor"``
        included), ``fields`` overriding or extending it."""
        config: dict[str, Any] = {
            "flavor": self.flavor,
            "project": self.project,
            "location": DEFAULT_LOCATION,
            "image": "local/steplift:emulated",
            "staging_bucket": f"gs://{self.buckets[0]}/steplift",
            "api_endpoint": self.endpoint_url,
            "logging_endpoint": self.endpoint_url,
            "secrets_endpoint": self.endpoint_url,
            "credentials": "anonymous",
        }
        if self.storage_url:
            config["storage_endpoint"] = self.storage_url
        return {**config, **fields}

    def attempt_key(self, job_id: str) -> str:
        """The step attempt of a job (its number or resource name; KeyError if unknown).

        Vertex AI names jobs itself, so the attempt is the ``steplift-key`` label the operator
        puts on each job: a digest of the step attempt and its artifact folder.
        """
        job = self.jobs.get_job(job_id)
        label = job.resource.get("labels", {}).get(KEY_LABEL)
        if label is None:
            raise KeyError(f"job {job_id} has no {KEY_LABEL} label (not launched by steplift)")
        return str(label)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Self:
        """Serve on 127.0.0.1 (port 0: a free one) from background threads."""
        if self._server is not None:
            return self
        if self.gcs:
            self._storage.start()
        app = ControlAPI(self, VertexService(self))
        self._server = LocalServer(app, self.port, name="vertex-emulator").start()
        return self

    def stop(self) -> None:
        """End every job, stop serving (both servers) and join their threads."""
        self.jobs.shutdown()
        if self._server is not None:
            self._server.stop()
            self._server = None
        self._storage.stop()

    # -- controls ------------------------------------------------------------------------------

    def reset(self) -> None:
        """Clear faults, scripts and the request log (jobs stay)."""
        super().reset()
        self.jobs.reset_scripts()

    def preempt(self, job_id: str) -> None:
        """Reclaim a running Spot job's VM: it fails with a preemption error."""
        self.jobs.preempt(job_id)

    def kill_node(self, job_id: str, rank: int) -> None:
        """Kill one replica of a running job (a lost host): node ``rank`` in node order
        (0 is workerpool0-0, 1 + i is workerpool1-i). The job then fails naming it."""
        self.jobs.kill_node(job_id, rank)

    def script(
        self, job_id: str | None, steps: Sequence[ScriptStep | str | Mapping[str, Any]]
    ) -> None:
        """Scripted mode: states (``"RUNNING"`` or ``"JOB_STATE_RUNNING"``) a job steps through;
        a failure is ``ScriptStep("FAILED", "RESOURCE_EXHAUSTED: no GPUs")``."""
        self.jobs.set_script(job_id, steps)

    def add_secret(self, name: str, value: str | bytes) -> str:
        """Store ``value`` as the newest version of a secret; returns the version's name.

        ``name`` is a secret id (in the emulator's project) or ``projects/<p>/secrets/<id>``.
        """
        project, secret_id = self.project, name
        if name.startswith("projects/"):
            parts = name.split("/")
            if len(parts) != 4 or parts[2] != "secrets":
                raise ValueError(f"{name!r} is not 'projects/<project>/secrets/<id>'")
            project, secret_id = parts[1], parts[3]
        return self.secrets.put(project, secret_id, value)

    def submissions(self) -> int:
        """CustomJobs created so far."""
        return len(self.jobs.all_jobs())

    def job_ids(self) -> list[str]:
        """Every CustomJob's number (the id `preempt` and `is_running` take), oldest first."""
        return [job.number for job in self.jobs.all_jobs()]

    def is_running(self, job_id: str) -> bool:
        """True while anything of the job (its runner or any replica's process) is alive."""
        return self.jobs.is_running(job_id)
