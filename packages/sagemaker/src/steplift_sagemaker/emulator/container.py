"""The SageMaker training-container contract, reproduced on the host.

A training container sees `/opt/ml/...` (config files, channels, model and output dirs, and the
checkpoint directory of CheckpointConfig.LocalPath) and, in framework images, `SM_*` variables
set by the sagemaker-training toolkit. Here `/opt/ml` is a per-attempt temp directory: the
variables point into it and any `/opt/ml` path (or the checkpoint LocalPath) found in the job's
arguments and Environment values is rewritten to it.

The job's processes start in a container of its TrainingImage (:func:`image_uri`, see
:mod:`steplift.emulation.sandbox`): a fresh empty working directory, the image's Python, and
only the variables of :func:`environment`.

A job with ``InstanceCount = N`` has hosts ``algo-1`` .. ``algo-N``; each host gets its own
`/opt/ml` (so its own ``resourceconfig.json`` naming it the ``current_host``) and its own
``SM_HOSTS``/``SM_CURRENT_HOST``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .jobs import EmulatedJob

CONTAINER_ROOT = "/opt/ml"
DEFAULT_CHECKPOINT_PATH = "/opt/ml/checkpoints"
HOST = "algo-1"
"""The first host of every job (the only one of a one-instance job)."""
GROUP = "homogeneousCluster"


@dataclass(frozen=True)
class Workspace:
    """The host directory standing in for one attempt's `/opt/ml`."""

    root: Path
    checkpoint_local_path: str | None
    """CheckpointConfig.LocalPath as the container sees it (None without CheckpointConfig)."""

    @property
    def model_dir(self) -> Path:
        """/opt/ml/model: what the job saves becomes model.tar.gz."""
        return self.root / "model"

    @property
    def output_dir(self) -> Path:
        """/opt/ml/output."""
        return self.root / "output"

    @property
    def output_data_dir(self) -> Path:
        """/opt/ml/output/data: becomes output.tar.gz."""
        return self.root / "output" / "data"

    @property
    def failure_file(self) -> Path:
        """Where an algorithm writes why it failed (read into FailureReason)."""
        return self.root / "output" / "failure"

    @property
    def input_config_dir(self) -> Path:
        """/opt/ml/input/config: resourceconfig.json and friends."""
        return self.root / "input" / "config"

    def channel_dir(self, channel: str) -> Path:
        """/opt/ml/input/data/<channel>."""
        return self.root / "input" / "data" / channel

    @property
    def checkpoint_dir(self) -> Path | None:
        """Host directory of the checkpoint LocalPath."""
        if self.checkpoint_local_path is None:
            return None
        return Path(self.host_path(self.checkpoint_local_path))

    def _prefixes(self) -> list[tuple[str, str]]:
        mapping = {CONTAINER_ROOT: str(self.root)}
        local = self.checkpoint_local_path
        if local and not _under(local, CONTAINER_ROOT):
            mapping[local.rstrip("/")] = str(self.root / "checkpoints")
        return sorted(mapping.items(), key=lambda item: -len(item[0]))

    def host_path(self, container_path: str) -> str:
        """Rewrite every container path (`/opt/ml`, checkpoint LocalPath) in a string."""
        text = container_path
        for prefix, host in self._prefixes():
            # Only whole path components: /opt/ml/model yes, /opt/mlflow no.
            text = re.sub(re.escape(prefix) + r"(?=/|$|[^\w.-])", host.replace("\\", "\\\\"), text)
        return text


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def channel_names(job: EmulatedJob) -> list[str]:
    """Names of the job's input channels."""
    return [channel["ChannelName"] for channel in job.request.get("InputDataConfig") or []]


def host_name(number: int) -> str:
    """SageMaker's name of the job's host ``number`` (1-based): ``algo-1``, ``algo-2``..."""
    return f"algo-{number}"


def hosts(job: EmulatedJob) -> list[str]:
    """The job's hosts, ``algo-1`` .. ``algo-N`` for ``ResourceConfig.InstanceCount = N``."""
    count = (job.request.get("ResourceConfig") or {}).get("InstanceCount") or 1
    return [host_name(number) for number in range(1, max(int(count), 1) + 1)]


def prepare_workspace(job: EmulatedJob, root: Path, host: str = HOST) -> Workspace:
    """Create the `/opt/ml` tree and its config files for one host of one attempt of a job."""
    checkpoint = job.request.get("CheckpointConfig")
    local = (checkpoint.get("LocalPath") or DEFAULT_CHECKPOINT_PATH) if checkpoint else None
    workspace = Workspace(root, local)
    dirs = [
        workspace.model_dir,
        workspace.output_data_dir,
        workspace.input_config_dir,
        workspace.root / "output" / "intermediate",
        workspace.root / "code",
    ]
    dirs += [workspace.channel_dir(name) for name in channel_names(job)]
    if workspace.checkpoint_dir is not None:
        dirs.append(workspace.checkpoint_dir)
    for directory in dirs:
        directory.mkdir(parents=True, exist_ok=True)
    files = {
        "resourceconfig.json": resource_config(job, host),
        "hyperparameters.json": job.request.get("HyperParameters") or {},
        "inputdataconfig.json": input_data_config(job),
    }
    if checkpoint:
        files["checkpointconfig.json"] = {"LocalPath": local, "S3Uri": checkpoint["S3Uri"]}
    for name, content in files.items():
        (workspace.input_config_dir / name).write_text(json.dumps(content, indent=2))
    return workspace


def instance_type(job: EmulatedJob) -> str:
    """The job's instance type (the emulator runs it on the host whatever it is)."""
    return str((job.request.get("ResourceConfig") or {}).get("InstanceType", "ml.m5.large"))


def resource_config(job: EmulatedJob, host: str = HOST) -> dict[str, Any]:
    """Contents of /opt/ml/input/config/resourceconfig.json on ``host``."""
    kind = instance_type(job)
    names = hosts(job)
    return {
        "current_host": host,
        "current_instance_type": kind,
        "current_group_name": GROUP,
        "hosts": names,
        "instance_groups": [{"instance_group_name": GROUP, "instance_type": kind, "hosts": names}],
        "network_interface_name": "eth0",
    }


def input_data_config(job: EmulatedJob) -> dict[str, Any]:
    """Contents of /opt/ml/input/config/inputdataconfig.json."""
    mode = (job.request.get("AlgorithmSpecification") or {}).get("TrainingInputMode", "File")
    config: dict[str, Any] = {}
    for channel in job.request.get("InputDataConfig") or []:
        source = (channel.get("DataSource") or {}).get("S3DataSource") or {}
        config[channel["ChannelName"]] = {
            "TrainingInputMode": channel.get("InputMode", mode),
            "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
            "RecordWrapperType": channel.get("RecordWrapperType", "None"),
        }
    return config


def image_uri(job: EmulatedJob) -> str:
    """The image the job's containers run: its TrainingImage (or its AlgorithmName)."""
    spec = job.request.get("AlgorithmSpecification") or {}
    return str(spec.get("TrainingImage") or spec.get("AlgorithmName") or "")


def command(job: EmulatedJob, workspace: Workspace) -> list[str]:
    """ContainerEntrypoint + ContainerArguments with container paths mapped to the host."""
    spec = job.request.get("AlgorithmSpecification") or {}
    parts = list(spec.get("ContainerEntrypoint") or []) + list(spec.get("ContainerArguments") or [])
    return [workspace.host_path(part) for part in parts]


def environment(
    job: EmulatedJob,
    workspace: Workspace,
    client_env: Mapping[str, str],
    host: str = HOST,
    rendezvous: tuple[str, int] | None = None,
) -> dict[str, str]:
    """The variables SageMaker gives the job's container on ``host``: the SM_* contract,
    the job's Environment, then the emulated account's endpoint and credentials (on SageMaker
    the job's role gives it those), so the job reaches the emulator and never a real endpoint.

    Nothing of the emulator's own environment: the container adds only its image's PATH,
    HOME and HOSTNAME (:class:`~steplift.emulation.sandbox.Container`).

    ``rendezvous`` (address, port) becomes ``MASTER_ADDR``/``MASTER_PORT``: SageMaker's hosts
    resolve ``algo-1`` by name, the hosts this emulator runs side by side on one machine cannot,
    so they meet on 127.0.0.1 instead, at a port of their job's own (steplift's cluster
    reader lets these two variables win over the first host's name).
    """
    env: dict[str, str] = {}
    hyperparameters = job.request.get("HyperParameters") or {}
    channels = {name: str(workspace.channel_dir(name)) for name in channel_names(job)}
    dirs = {
        "input_dir": str(workspace.root / "input"),
        "input_config_dir": str(workspace.input_config_dir),
        "model_dir": str(workspace.model_dir),
        "output_dir": str(workspace.output_dir),
        "output_data_dir": str(workspace.output_data_dir),
        "output_intermediate_dir": str(workspace.root / "output" / "intermediate"),
    }
    num_cpus = os.cpu_count() or 1
    names = hosts(job)
    training_env: dict[str, Any] = {
        "job_name": job.name,
        "current_host": host,
        "hosts": names,
        "master_hostname": names[0],
        "is_master": host == names[0],
        "num_gpus": 0,
        "num_cpus": num_cpus,
        "hyperparameters": hyperparameters,
        "channel_input_dirs": channels,
        "input_data_config": input_data_config(job),
        "resource_config": resource_config(job, host),
        "network_interface_name": "eth0",
        "log_level": 20,
        **dirs,
    }
    env.update({f"SM_{key.upper()}": value for key, value in dirs.items()})
    env.update(
        TRAINING_JOB_NAME=job.name,
        TRAINING_JOB_ARN=job.arn,
        PYTHONUNBUFFERED="1",
        SM_CHANNELS=json.dumps(sorted(channels)),
        SM_HOSTS=json.dumps(names),
        SM_CURRENT_HOST=host,
        SM_CURRENT_INSTANCE_TYPE=instance_type(job),
        SM_NUM_GPUS="0",
        SM_NUM_CPUS=str(num_cpus),
        SM_HPS=json.dumps(hyperparameters),
        SM_RESOURCE_CONFIG=json.dumps(training_env["resource_config"]),
        SM_INPUT_DATA_CONFIG=json.dumps(training_env["input_data_config"]),
        SM_NETWORK_INTERFACE_NAME="eth0",
        SM_LOG_LEVEL="20",
        SM_TRAINING_ENV=json.dumps(training_env),
    )
    if rendezvous is not None:
        env.update(MASTER_ADDR=rendezvous[0], MASTER_PORT=str(rendezvous[1]))
    for name, path in channels.items():
        env[f"SM_CHANNEL_{name.upper()}"] = path
    for key, value in hyperparameters.items():
        env[f"SM_HP_{key.upper()}"] = str(value)
    for key, value in (job.request.get("Environment") or {}).items():
        env[key] = workspace.host_path(value)
    env.update(client_env)  # last: the job must reach the emulator, never a real endpoint
    return env
