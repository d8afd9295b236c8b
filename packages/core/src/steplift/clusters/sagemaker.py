"""SageMaker: ``/opt/ml/input/config/resourceconfig.json`` (``hosts``, ``current_host``), or
``SM_HOSTS``/``SM_CURRENT_HOST`` in framework containers; the chief is the first host."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from steplift.cluster import DEFAULT_MASTER_PORT, Cluster, ClusterError, ClusterReader, env_int

RESOURCE_CONFIG = "/opt/ml/input/config/resourceconfig.json"
HOSTS = "SM_HOSTS"
CURRENT_HOST = "SM_CURRENT_HOST"
INPUT_CONFIG_DIR = "SM_INPUT_CONFIG_DIR"


def resource_config(env: Mapping[str, str]) -> Path | None:
    """The job's resource config file, if there is one."""
    folder = env.get(INPUT_CONFIG_DIR)
    path = Path(folder, "resourceconfig.json") if folder else Path(RESOURCE_CONFIG)
    return path if path.is_file() else None


def read(env: Mapping[str, str]) -> Cluster | None:
    """The cluster of the resource config (or the ``SM_`` variables), or None without them."""
    config_file = resource_config(env)
    if config_file is not None:
        try:
            document = json.loads(config_file.read_text())
            hosts = [str(host) for host in document["hosts"]]
            current = str(document["current_host"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ClusterError(
                f"{config_file} is not a SageMaker resource config: {error}"
            ) from None
    elif HOSTS in env:
        try:
            hosts = [str(host) for host in json.loads(env[HOSTS])]
        except (ValueError, TypeError) as error:
            raise ClusterError(f"{HOSTS} must be a JSON list of hosts: {error}") from None
        current = env.get(CURRENT_HOST, "")
    else:
        return None
    hosts = sorted(hosts)
    if current not in hosts:
        raise ClusterError(f"current host {current!r} is not among the job's hosts {hosts}")
    return Cluster(
        nodes=len(hosts),
        node_rank=hosts.index(current),
        master_addr=env.get("MASTER_ADDR", hosts[0]),
        master_port=env_int(env, "MASTER_PORT", DEFAULT_MASTER_PORT),
        source="sagemaker",
    )


READER = ClusterReader(
    name="sagemaker",
    precedence=30,
    variables=frozenset({HOSTS, CURRENT_HOST, INPUT_CONFIG_DIR, "MASTER_ADDR", "MASTER_PORT"}),
    read=read,
)
