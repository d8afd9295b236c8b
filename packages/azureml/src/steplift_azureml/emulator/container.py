"""How a job's processes start: the environment Azure ML gives them and the folders they see.

The emulator runs a job's command on this machine in a container of its environment's image
per node (:mod:`steplift.emulation.sandbox`: a fresh empty working directory shared by the
node's processes, the image's Python), with only what Azure ML gives a job: the compute's
managed identity (``MSI_*``), the workspace's ``AZUREML_*`` variables and its storage, the
job's own variables, and with a PyTorch distribution the torch rendezvous variables. Nothing
of the emulator's (or its client's) environment. Outputs (``${{outputs.NAME}}``) are folders
under the emulator's working folder, a datastore path mapped to one folder per path.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steplift_azureml.emulator.errors import invalid
from steplift_azureml.secrets import ENDPOINT_ENV as KEYVAULT_ENDPOINT_ENV

if TYPE_CHECKING:
    from steplift_azureml.emulator.jobs import EmulatedJob
    from steplift_azureml.emulator.server import AzureMLEmulator


def image_uri(properties: Mapping[str, Any], environments: Mapping[tuple[str, str], Any]) -> str:
    """The image a job's containers run: its environment version's image when the
    workspace has that version, else the environment's id itself (a registry's curated
    environment, ``azureml://registries/azureml/environments/NAME/versions/N``)."""
    environment_id = str(properties.get("environmentId") or "")
    match = re.search(r"/environments/([^/]+)/versions/([^/]+)$", environment_id)
    if match:
        resource = environments.get((match.group(1), match.group(2)))
        image = (resource or {}).get("properties", {}).get("image")
        if image:
            return str(image)
    return environment_id


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
    service_env: Mapping[str, str],
    master_port: int,
) -> dict[str, str]:
    """The variables Azure ML gives the job's process of global ``rank``: ``service_env``
    (the compute's identity and the workspace), the job's own, then the platform's."""
    properties = job.resource.get("properties", {})
    env = dict(service_env)
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
