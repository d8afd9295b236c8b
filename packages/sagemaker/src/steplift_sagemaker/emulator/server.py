"""`SageMakerEmulator`: moto's server plus steplift's layer, on 127.0.0.1.

moto internals relied on (hence the exact pin moto[server]==5.2.1):
`moto.moto_server.werkzeug_app.DomainDispatcherApplication` and `create_backend_app`, the WSGI
app that `moto.server.ThreadedMotoServer` serves. We serve it ourselves (same werkzeug server)
so our layer can sit in front. moto's own SageMaker training-job backend is not used; S3 and
CloudWatch Logs are moto's, reached through the public API. moto keeps its backends in
process-global state, so emulators in one process share S3 buckets and log groups (training
jobs, faults and request logs are per emulator).
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from steplift.emulation.images import ImageRegistry
from steplift.emulation.sandbox import Sandbox
from steplift.testing.emulation import ControlAPI, EmulatorBase, EmulatorMode, ScriptStep

from .jobs import JobRunner, JobStore, RunContext, remove_workdir
from .secrets import put_secret
from .service import SageMakerLayer, TrainingJobService
from .storage import DEFAULT_BUCKET, InternalClients

logger = logging.getLogger(__name__)

ACCOUNT_ID = "123456789012"
"""The account moto answers for with the test credentials."""
HOST = "127.0.0.1"
ACCESS_KEY = "testing"
"""moto takes any credentials; these are the ones every client of the emulator uses."""
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/steplift"


class _RequestHandler(WSGIRequestHandler):
    # One request per connection: every handler thread ends with its response, so nothing
    # lingers on a kept-alive socket after stop(). Declared here so werkzeug won't upgrade it.
    protocol_version = "HTTP/1.0"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        logger.debug("%s %s -> %s", self.command, self.path, code)


class SageMakerEmulator(EmulatorBase):
    """SageMaker (training jobs), S3 and CloudWatch Logs on 127.0.0.1 for the real boto3 client.

    Use as a context manager (or start()/stop()). In "execute" mode each training job's
    ContainerEntrypoint + ContainerArguments runs as a local process per host (InstanceCount
    hosts, algo-1..algo-N, meeting on 127.0.0.1); in "scripted" mode every
    DescribeTrainingJob, and every ListTrainingJobs page that shows the job, moves it one
    step along its script. A job's hosts run as containers of its TrainingImage: ``images``
    says which local Python environment an image URI stands for (others: the stock image).
    """

    service_name = "sagemaker"
    flavor: ClassVar[str] = "sagemaker"

    def __init__(
        self,
        mode: EmulatorMode = "execute",
        *,
        port: int = 0,
        region: str = "us-east-1",
        stop_grace: float = 2.0,
    ) -> None:
        """``region``: the one region the emulator answers for (``--region`` of its CLI);
        ``stop_grace``: seconds a job's processes get between SIGTERM and SIGKILL."""
        super().__init__(mode)
        self.region = region
        self.port = port
        self.stop_grace = stop_grace
        self.store = JobStore(region, ACCOUNT_ID)
        self.jobs = TrainingJobService(self.store, mode, lambda: self.faults, self._run_context)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._workdir: Path | None = None
        self._clients: InternalClients | None = None
        self.images = ImageRegistry()
        """Image URIs → local Python environments; any other image runs as the stock one."""

    # -- serving

    @property
    def endpoint_url(self) -> str:
        """http://127.0.0.1:PORT once started."""
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return f"http://{HOST}:{self._server.server_port}"

    def client_env(self) -> dict[str, str]:
        """What a boto3 client (or job process) needs to reach this emulator."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": ACCESS_KEY,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "NO_PROXY": f"{HOST},localhost",
        }

    def operator_config(self, **fields: Any) -> dict[str, Any]:
        """The ``sagemaker`` operator fields that point at this running emulator.

        Its endpoint, region and credentials, a role of its account, and the bucket it made on
        start (``s3://steplift/runs``); ``fields`` override or extend them (another
        ``bucket``, ``gpu``, ``instance_count``...).
        """
        return {
            "flavor": self.flavor,
            "region": self.region,
            "role_arn": ROLE_ARN,
            "image": f"{ACCOUNT_ID}.dkr.ecr.{self.region}.amazonaws.com/train:latest",
            "bucket": f"s3://{DEFAULT_BUCKET}/runs",
            "endpoint_url": self.endpoint_url,
            "aws_access_key_id": ACCESS_KEY,
            "aws_secret_access_key": ACCESS_KEY,
            **fields,
        }

    def start(self) -> Self:
        """Serve on 127.0.0.1 (port 0 picks a free one) from a background thread."""
        if self._server is not None:
            return self
        # Imported here: moto's server pulls in flask and every backend index (~0.5 s).
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            create_backend_app,
        )

        moto_app = DomainDispatcherApplication(create_backend_app)
        app = ControlAPI(self, SageMakerLayer(self, self.jobs, moto_app))
        self._workdir = Path(tempfile.mkdtemp(prefix="steplift-sagemaker-"))
        self._server = make_server(
            HOST, self.port, app, threaded=True, request_handler=_RequestHandler
        )
        self._clients = InternalClients(self.endpoint_url, self.region)
        server = self._server
        self._thread = threading.Thread(
            # A short poll keeps stop() quick: shutdown() waits for the loop to notice.
            target=lambda: server.serve_forever(poll_interval=0.1),
            name="sagemaker-emulator",
            daemon=True,
        )
        self._thread.start()
        self._clients.ensure_bucket(DEFAULT_BUCKET)
        return self

    def stop(self) -> None:
        """End every job process and thread, stop serving and delete job directories."""
        if self._server is None:
            return
        self.jobs.shutdown()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(10.0)
        self._server = None
        self._thread = None
        if self._workdir is not None:
            remove_workdir(self._workdir)
            self._workdir = None

    def _run_context(self) -> RunContext:
        assert self._clients is not None and self._workdir is not None
        return RunContext(
            store=self.store,
            clients=self._clients,
            workdir=self._workdir,
            faults=lambda: self.faults,
            client_env=self.client_env,
            grace=self.stop_grace,
            # Job names have no dots: no job's folder is this one.
            sandbox=Sandbox(self._workdir / ".containers", self.images),
        )

    # -- controls

    def reset(self) -> None:
        """Clear faults, scripts and the request log (jobs stay)."""
        super().reset()
        self.jobs.reset_scripts()

    def preempt(self, job_id: str) -> None:
        """Spot-interrupt a running managed spot job (SecondaryStatus Interrupted, restart).

        KeyError for an unknown job, ValueError for a job that is not spot or not running.
        """
        self.jobs.preempt(job_id)

    def fail_instance(self, job_id: str, host: int = 1) -> None:
        """Execute mode: an instance of a running job fails; the job ends Failed with
        SageMaker's InternalServerError (an infrastructure failure, unlike a preemption).

        ``host`` is the 1-based number of the lost host (``algo-<host>``); its process is
        killed at once and the job's other hosts are stopped. KeyError for an unknown job or
        one not training yet, ValueError for a host the job does not have.
        """
        self.jobs.fail_instance(job_id, host)

    def kill_node(self, job_id: str, node: int) -> None:
        """Lose node ``node`` (0-based: host ``algo-<node + 1>``) of a running job."""
        self.fail_instance(job_id, host=node + 1)

    def script(
        self, job_id: str | None, steps: Sequence[ScriptStep | str | Mapping[str, Any]]
    ) -> None:
        """Scripted mode: the SecondaryStatus steps of one job, or of all new jobs (None).

        A step is a status ("Training") or ScriptStep("Failed", "AlgorithmError: ...").
        """
        self.jobs.set_script(job_id, steps)

    def add_secret(self, name: str, value: str) -> str:
        """Store ``value`` as Secrets Manager secret ``name`` (a new version if it exists);
        returns the ARN an operator's ``secrets`` table refers to it by."""
        if self._clients is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return put_secret(self._clients.secretsmanager, name, value)

    def attempt_key(self, job_id: str) -> str:
        """The step attempt job ``job_id`` was submitted for.

        SageMaker jobs are named from their step attempt (the operator's ``find_job`` looks an
        attempt up by that name, and a second create of one is refused by name), so the key
        is the name the emulator holds the job under. KeyError for an unknown job.
        """
        job = self.store.find(job_id)
        if job is None:
            raise KeyError(job_id)
        return job.name

    def job_ids(self) -> list[str]:
        """Every training job's name, oldest first."""
        return [job.name for job in sorted(self.store, key=lambda job: job.created)]

    def is_running(self, job_id: str) -> bool:
        """True while the job's runner thread or the process of any of its hosts is alive."""
        runner = self.runner(job_id)
        if runner is None:
            return False
        return runner.alive or runner.processes_running()

    def runner(self, job_id: str) -> JobRunner | None:
        """Execute mode: the runner of a job (its hosts' `group` of processes and their
        `workspaces`), for tests."""
        return self.jobs.runner(job_id)
