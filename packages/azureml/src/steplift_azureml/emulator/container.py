"""How a job's processes start: the environment Azure ML gives them and the folders they see.

The emulator runs a job's command on this machine (the image is ignored), with the host's
environment minus the client's own state, the compute's managed identity (``MSI_*``), the
workspace's ``AZUREML_*`` variables, the job's own variables, and with a PyTorch
distribution the torch rendezvous variables. Outputs (``${{outputs.NAME}}``) are folders
under the emulator's working folder, a datastore path mapped to one folder per path.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steplift.cluster import without_cluster
from steplift_azureml.emulator.errors import invalid
from steplift_azureml.secrets import ENDPOINT_ENV as KEYVAULT_ENDPOINT_ENV

if TYPE_CHECKING:
    from steplift_azureml.emulator.jobs import EmulatedJob
    from steplift_azureml.emulator.server import AzureMLEmulator

CLIENT_ONLY = frozenset({"AZUREML_CURRENT_CLOUD", "IDENTITY_ENDPOINT", "IDENTITY_HEADER"})
"""The client's SDK state and identity: not the container's."""


def emulator_base_env() -> dict[str, str]:
    """The host environment jobs start from (the emulator runs them on this machine).

    The image is ignored, so ``python`` in a command must be this interpreter: its folder
    goes first on PATH.
    """
    env = dict(os.environ)
    folder = os.path.dirname(sys.executable)
    env["PATH"] = folder + os.pathsep + env.get("PATH", "")
    return env


def service_env(emulator: AzureMLEmulator) -> dict[str, str]:
    """What the Azure ML compute gives every job of ``emulator``'s workspace."""
    env = {
        # The compute's managed identity, as Azure ML provides it to a job.
        "MSI_ENDPOINT": emulator.endpoint_url + "/msi/token",
        "MSI_SECRET": emulator.identity_header,
        "REQUESTS_CA_BUNDLE": str(emulator.cert_path),
        KEYVAULT_ENDPOINT_ENV: emulator.keyvault_endpoint,
        "AZUREML_ARM_SUBSCRIPTION": emulator.subscription_id,
        "AZUREML_ARM_RESOURCEGROUP": emulator.resource_group,
        "AZUREML_ARM_WORKSPACE_NAME": emulator.workspace,
        "AZUREML_SERVICE_ENDPOINT": emulator.endpoint_url,
        "AZUREML_DISCOVERY_SERVICE_ENDPOINT": emulator.endpoint_url + "/discovery",
    }
    if emulator.storage_connection_string:
        env["AZURE_STORAGE_CONNECTION_STRING"] = emulator.storage_connection_string
    return env


def job_environment(
    job: EmulatedJob,
    *,
    rank: int,
    base: Mapping[str, str],
    service_env: Mapping[str, str],
    master_port: int,
) -> dict[str, str]:
    """The environment Azure ML gives the job's process of global ``rank``."""
    properties = job.resource.get("properties", {})
    # The client's SDK state (the cloud an MLClient registered) and identity are not the
    # container's: a job has the compute's managed identity (MSI_* in ``service_env``).
    # Nor does a job inherit the host's own cluster description, if it has one.
    env = {key: value for key, value in without_cluster(base).items() if key not in CLIENT_ONLY}
    env.update(service_env)
    env.update({str(k): str(v) for k, v in (properties.get("environmentVariables") or {}).items()})
    node = job.node_of(rank)
    env.update(
        {
            "AZUREML_RUN_ID": job.name,
            "AZUREML_EXPERIMENT_NAME": job.experiment,
            "AZUREML_ARM_PROJECT_NAME": job.experiment,
            "AZUREML_NODE_COUNT": str(job.instance_count),
            "AZUREML_CR_NODE_RANK": str(node),
        }
    )
    if job.distributed:
        # What Azure ML's PyTorch distribution sets in every process it starts.
        env.update(
            {
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(master_port),
                "WORLD_SIZE": str(job.world_size),
                "NODE_RANK": str(node),
                "RANK": str(rank),
                "LOCAL_RANK": str(rank % job.processes_per_instance),
                "LOCAL_WORLD_SIZE": str(job.processes_per_instance),
            }
        )
    return env


def datastore_folder(root: Path, datastore: str, path: str) -> Path:
    """The host folder standing in for ``azureml://datastores/DATASTORE/paths/PATH``."""
    return Path(root, "datastores", datastore, *path.strip("/").split("/"))


def mount_outputs(
    name: str, properties: dict[str, Any], *, root: Path, datastores: Collection[str]
) -> str:
    """Mount each output (a host folder) and substitute ${{outputs.NAME}} in the command."""
    command = str(properties["command"])
    folders: dict[str, Path] = {}
    for output, spec in (properties.get("outputs") or {}).items():
        spec = spec or {}
        kind = spec.get("jobOutputType")
        if kind not in ("uri_folder", "uri_file"):
            raise invalid(
                f"Output '{output}': the emulator mounts uri_folder/uri_file outputs, not {kind!r}."
            )
        uri = str(spec.get("uri") or "")
        if not uri:
            folder = Path(root, "jobs", name, "outputs", output)
        else:
            match = re.fullmatch(r"azureml://datastores/([^/]+)/paths/(.+)", uri)
            if not match:
                raise invalid(f"Output '{output}': unsupported uri {uri!r}.")
            if match.group(1) not in datastores:
                raise invalid(f"Datastore '{match.group(1)}' was not found.", "NotFound")
            folder = datastore_folder(root, match.group(1), match.group(2))
        folder.mkdir(parents=True, exist_ok=True)
        folders[output] = folder
    for reference in re.findall(r"\$\{\{\s*(\w+)\.(\w+)\s*\}\}", command):
        if reference[0] != "outputs" or reference[1] not in folders:
            raise invalid(
                f"The command refers to ${{{{{reference[0]}.{reference[1]}}}}}, "
                "which the job does not define."
            )
    return re.sub(
        r"\$\{\{\s*outputs\.(\w+)\s*\}\}",
        lambda found: str(folders[found.group(1)]),
        command,
    )
