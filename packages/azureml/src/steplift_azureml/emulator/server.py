"""The Azure ML emulator: :class:`AzureMLEmulator` serves the Azure ML API (:mod:`.service`)
on https://127.0.0.1 and owns the workspace's state (jobs, environments, computes, vault).

Azure clients send bearer tokens only over https, so the emulator serves TLS with a
self-signed certificate for 127.0.0.1 it writes when it starts; clients trust it through
``REQUESTS_CA_BUNDLE``. A plain-http control port serves only ``/_steplift/`` (the shared
control API, with the kill-node fault ``POST jobs/<id>/kill-node``, ``{"node": R}``).

Jobs run with the Azure ML compute's managed identity (``MSI_ENDPOINT``/``MSI_SECRET``) and
``STEPLIFT_AZUREML_KEYVAULT_ENDPOINT`` pointing every vault here (:mod:`.container`).
"""

from __future__ import annotations

import datetime
import ipaddress
import secrets
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

from steplift.emulation.images import ImageRegistry
from steplift.emulation.sandbox import Sandbox
from steplift.testing.emulation import (
    ControlAPI,
    EmulatorBase,
    EmulatorMode,
    LocalServer,
    ScriptStep,
    StartResponse,
)
from steplift_azureml.emulator import container
from steplift_azureml.emulator.jobs import EmulatedJob, JobTable
from steplift_azureml.emulator.secrets import DEFAULT_VAULT, Vault
from steplift_azureml.emulator.service import SERVICE, AzureMLService
from steplift_azureml.emulator.storage import DEV_ACCOUNT, Azurite
from steplift_azureml.requests import ATTEMPT_TAG
from steplift_azureml.secrets import ENDPOINT_ENV as KEYVAULT_ENDPOINT_ENV

DEFAULT_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
DEFAULT_RESOURCE_GROUP = "steplift-rg"
DEFAULT_WORKSPACE = "steplift-ws"


@dataclass(frozen=True)
class Compute:
    """A compute cluster of the emulated workspace."""

    name: str
    vm_size: str
    low_priority: bool = False
    max_nodes: int = 4


DEFAULT_COMPUTES = (
    Compute("cpu-cluster", "Standard_DS3_v2"),
    Compute("gpu-cluster", "Standard_NC24ads_A100_v4"),
    Compute("spot-cluster", "Standard_NC24ads_A100_v4", low_priority=True),
)


class AzureMLEmulator(EmulatorBase):
    """The Azure ML API on 127.0.0.1 over HTTPS, executing or scripting command jobs.

    ``azurite=True`` starts an Azurite blob service for the emulator's lifetime, or pass a
    running :class:`Azurite`; by default (None) an executing emulator starts one (its jobs
    reach their artifacts there) and a scripted one does not; jobs get its connection string as
    ``AZURE_STORAGE_CONNECTION_STRING`` (the job identity's access). ``stop_grace`` is how
    long a stopped job's processes get to exit; ``retry_after_ms`` what a throttled answer
    asks the client to wait. The workspace (``subscription_id``, ``resource_group``,
    ``workspace``, ``computes``) and ``list_page_size`` are attributes, set before
    :meth:`start`. A job's nodes run as containers of its environment's image: ``images``
    says which local Python environment an image URI stands for (others: the stock image).
    """

    service_name = SERVICE
    flavor: ClassVar[str] = "azureml"

    def __init__(
        self,
        mode: EmulatorMode = "execute",
        *,
        port: int = 0,
        azurite: Azurite | bool | None = None,
        stop_grace: float = 2.0,
        retry_after_ms: int = 1000,
    ) -> None:
        super().__init__(mode)
        self.port = port
        self.stop_grace = stop_grace
        self.retry_after_ms = retry_after_ms
        self.list_page_size = 100
        """Jobs per page of the jobs list."""
        self.subscription_id = DEFAULT_SUBSCRIPTION
        self.resource_group = DEFAULT_RESOURCE_GROUP
        self.workspace = DEFAULT_WORKSPACE
        self.computes = {compute.name.lower(): compute for compute in DEFAULT_COMPUTES}
        """The workspace's clusters, by lower-case name."""
        self.datastores = {"workspaceblobstore", "workspaceartifactstore", "workspacefilestore"}
        self.environments: dict[tuple[str, str], dict[str, Any]] = {}
        """Registered environment versions: (name, version) → the resource."""
        self.identity_header = secrets.token_hex(16)
        self.tenant_id = str(uuid.UUID(int=2))
        self.vault = Vault()
        self.job_table = JobTable(
            mode,
            faults=lambda: self.faults,
            wait_for_faults_change=self.wait_for_faults_change,
            stop_grace=stop_grace,
        )
        self._azurite_arg = azurite
        self._azurite: Azurite | None = None
        self._owns_azurite = False
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._server: LocalServer | None = None
        self._control: LocalServer | None = None
        self.images = ImageRegistry()
        """Image URIs → local Python environments; any other image runs as the stock one."""
        self.sandbox = Sandbox(lambda: self.workdir / "containers", self.images)
        """Where the jobs' containers are made (one per node)."""

    @property
    def jobs(self) -> dict[str, EmulatedJob]:
        """Every job by name, oldest first."""
        return self.job_table.jobs

    @property
    def created_jobs(self) -> int:
        """Jobs created since the emulator started."""
        return self.job_table.created

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Self:
        self._tmp = tempfile.TemporaryDirectory(prefix="steplift-azureml-emulator-")
        folder = Path(self._tmp.name)
        try:
            self.cert_path, key_path = write_self_signed(folder)
            if isinstance(self._azurite_arg, Azurite):
                self._azurite = self._azurite_arg
            elif self._azurite_arg or (self._azurite_arg is None and self.mode == "execute"):
                self._azurite = Azurite().start()
                self._owns_azurite = True
            app = ControlAPI(self, AzureMLService(self))
            cert = (self.cert_path, key_path)
            self._server = LocalServer(app, self.port, cert=cert, name="azureml-emulator").start()
            control = ControlAPI(self, _not_found)
            self._control = LocalServer(control, 0, name="azureml-control")
            self._control.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self.job_table.stopping.set()
        for server in (self._server, self._control):
            if server is not None:
                server.stop()
        self._server = self._control = None
        self.job_table.stop(self.stop_grace)
        if self._owns_azurite and self._azurite is not None:
            self._azurite.stop()
        self._azurite = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp.name, ignore_errors=True)
            self._tmp.cleanup()
            self._tmp = None

    @property
    def endpoint_url(self) -> str:
        """https://127.0.0.1:PORT, the base of every cloud endpoint the client needs."""
        assert self._server is not None, "the emulator is not running"
        return self._server.url

    @property
    def control_url(self) -> str | None:
        """Plain-http base URL serving only ``/_steplift/`` (for :class:`EmulatorControl`)."""
        return self._control.url if self._control else None

    @property
    def workdir(self) -> Path:
        """The emulator's working folder (jobs, outputs, datastores), while it runs."""
        return Path(self._tmp.name if self._tmp else ".")

    @property
    def workspace_id(self) -> str:
        """The emulated workspace's ARM id."""
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.MachineLearningServices/workspaces/{self.workspace}"
        )

    @property
    def azurite(self) -> Azurite | None:
        """The Azurite instance jobs use, if any."""
        return self._azurite

    @property
    def storage_connection_string(self) -> str | None:
        """The connection string given to jobs (Azurite's when it runs)."""
        return self._azurite.connection_string if self._azurite else None

    @property
    def keyvault_endpoint(self) -> str:
        """The base URL serving every emulated vault (``BASE/VAULT/secrets/NAME``)."""
        return self.endpoint_url + "/keyvault"

    def cloud_metadata(self) -> dict[str, str]:
        """The custom-cloud metadata that points an ``MLClient`` here."""
        base = self.endpoint_url
        return {
            "azure_portal": base + "/",
            "resource_manager": base + "/",
            "active_directory": base + "/",
            "aml_resource_id": base + "/",
            "storage_endpoint": "core.windows.net",
            "registry_discovery_endpoint": base + "/",
        }

    def client_env(self) -> dict[str, str]:
        env = {
            "REQUESTS_CA_BUNDLE": str(self.cert_path),
            "IDENTITY_ENDPOINT": self.endpoint_url + "/msi/token",
            "IDENTITY_HEADER": self.identity_header,
            "STEPLIFT_AZUREML_ENDPOINT": self.endpoint_url,
            KEYVAULT_ENDPOINT_ENV: self.keyvault_endpoint,
        }
        if self.storage_connection_string:
            env["AZURE_STORAGE_CONNECTION_STRING"] = self.storage_connection_string
        return env

    def operator_config(self, **fields: Any) -> dict[str, Any]:
        """The ``azureml`` operator config that points at this emulator (``"flavor"``
        included): its workspace, endpoint and managed identity, serverless
        ``Standard_DS3_v2`` and an artifact root in Azurite's account; ``fields`` override or
        extend it, and a field given as None is left out (``compute="cpu-cluster",
        instance_type=None`` runs on a cluster)."""
        config: dict[str, Any] = {
            "flavor": self.flavor,
            "subscription_id": self.subscription_id,
            "resource_group": self.resource_group,
            "workspace": self.workspace,
            "cloud_endpoint": self.endpoint_url,
            "credential": "managed_identity",
            "artifact_root": f"azureblob://{DEV_ACCOUNT}/steplift/demo",
            "image": "python:3.11-slim",
            "instance_type": "Standard_DS3_v2",
            **fields,
        }
        return {key: value for key, value in config.items() if value is not None}

    def attempt_key(self, job_id: str) -> str:
        """The step attempt job ``job_id`` was submitted for: its ``steplift.attempt`` tag.

        Azure ML jobs are named from their step attempt by the client, and the operator tags
        each with the attempt's key. KeyError for an unknown job or one without the tag.
        """
        job = self.jobs[job_id]
        tags = job.resource.get("properties", {}).get("tags") or {}
        if ATTEMPT_TAG not in tags:
            raise KeyError(f"job {job_id} has no {ATTEMPT_TAG} tag (not launched by steplift)")
        return str(tags[ATTEMPT_TAG])

    # -- control hooks ----------------------------------------------------------------------

    def reset(self) -> None:
        super().reset()
        self.job_table.reset()

    def script(
        self, job_id: str | None, steps: Sequence[ScriptStep | str | Mapping[str, Any]]
    ) -> None:
        self.job_table.script(job_id, steps)

    def preempt(self, job_id: str) -> None:
        self.job_table.preempt(job_id)

    def kill_node(self, job_id: str, node: int) -> None:
        """Kill every process of one instance of a running job, as when its host is lost.

        The other instances are stopped and the job fails naming the lost node. A scripted
        job fails the same way at once. KeyError: no such job; ValueError: it cannot be done.
        """
        self.job_table.kill_node(job_id, node)

    def job_ids(self) -> list[str]:
        """Every job's name, oldest first."""
        with self.job_table.lock:
            return list(self.jobs)

    def is_running(self, job_id: str) -> bool:
        """True while any process of the job runs, on any instance."""
        return self.job_table.is_running(job_id)

    def register_environment(self, name: str, version: str, image: str) -> None:
        """Register an environment version, as ``az ml environment create`` would."""
        self.environments[(name, version)] = {
            "id": f"{self.workspace_id}/environments/{name}/versions/{version}",
            "name": version,
            "type": "Microsoft.MachineLearningServices/workspaces/environments/versions",
            "properties": {"image": image, "provisioningState": "Succeeded"},
        }

    def add_secret(self, name: str, value: str, *, vault: str = DEFAULT_VAULT) -> str:
        """Store a new version of secret ``name``; its reference (the version-less URI).

        In-process only, and not in the request log: the log never holds a secret's value.
        """
        return self.vault.add(name, value, vault=vault)

    def secret_versions(self, name: str, *, vault: str = DEFAULT_VAULT) -> list[str]:
        """The versions of a secret, oldest first."""
        return self.vault.versions(name, vault=vault)

    def datastore_folder(self, datastore: str, path: str) -> Path:
        """The host folder standing in for ``azureml://datastores/DATASTORE/paths/PATH``."""
        assert self._tmp is not None, "the emulator is not running"
        return container.datastore_folder(self.workdir, datastore, path)

    def env_maker(self, job: EmulatedJob) -> Callable[[int, int], dict[str, str]]:
        """(global rank, rendezvous port) → the environment of that process of ``job``."""

        def env_for_rank(rank: int, master_port: int) -> dict[str, str]:
            return container.job_environment(
                job,
                rank=rank,
                service_env=container.service_env(self),
                master_port=master_port,
            )

        return env_for_rank


def write_self_signed(folder: Path) -> tuple[Path, Path]:
    """Write ``cert.pem`` and ``key.pem`` (SAN IP:127.0.0.1, DNS:localhost) into ``folder``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "steplift Azure ML emulator")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = folder / "cert.pem"
    key_path = folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def _not_found(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    data = b'{"error": {"code": "NotFound", "message": "control port: only /_steplift/"}}'
    start_response(
        "404 Not Found", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]
