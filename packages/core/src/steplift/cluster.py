"""One view of a multi-node job, whichever cloud runs it.

Each cloud describes the cluster to the container in its own words:

- SageMaker: ``/opt/ml/input/config/resourceconfig.json`` (``hosts``, ``current_host``), or
  ``SM_HOSTS``/``SM_CURRENT_HOST`` in framework containers; the chief is the first host.
- Vertex AI: ``CLUSTER_SPEC``, a JSON document whose ``workerpool0`` holds the chief and
  ``workerpool1`` the other replicas, with ``task`` naming this replica.
- Azure ML's PyTorch distribution (and torchrun): the torch ``env://`` variables themselves,
  per process (``MASTER_ADDR``, ``MASTER_PORT``, ``WORLD_SIZE``, ``RANK``, ``NODE_RANK``,
  ``LOCAL_RANK``).
- steplift's ``local`` flavor: ``STEPLIFT_NODES``, ``NODE_RANK``, ``MASTER_ADDR``,
  ``MASTER_PORT``.

:func:`read_cluster` turns any of these into a :class:`Cluster` (node level); the entrypoint
derives each process's :class:`Distributed` view from it and exports the torch variables, so
that inside a step ``steplift.distributed()`` and ``torch.distributed.init_process_group("gloo"
or "nccl")`` both just work. Standard library only: this runs in every job.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MASTER_PORT = 29500
"""torch's own default rendezvous port, used where a cloud names hosts but no port."""

SAGEMAKER_RESOURCE_CONFIG = "/opt/ml/input/config/resourceconfig.json"

NODES_VARIABLE = "STEPLIFT_NODES"
LOCAL_GPUS_VARIABLE = "STEPLIFT_LOCAL_GPUS"

CLUSTER_VARIABLES = frozenset(
    {
        "MASTER_ADDR",
        "MASTER_PORT",
        "WORLD_SIZE",
        "RANK",
        "NODE_RANK",
        "LOCAL_RANK",
        "LOCAL_WORLD_SIZE",
        NODES_VARIABLE,
        LOCAL_GPUS_VARIABLE,
        "CLUSTER_SPEC",
        "SM_HOSTS",
        "SM_CURRENT_HOST",
        "SM_INPUT_CONFIG_DIR",
        "AZUREML_NODE_COUNT",
    }
)
"""Every variable that describes a cluster to a process. A job never inherits these from
whatever launched it (a launcher may itself run in a cluster): the job's own platform sets
them."""


def without_cluster(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without any cluster description (see :data:`CLUSTER_VARIABLES`)."""
    return {name: value for name, value in env.items() if name not in CLUSTER_VARIABLES}


class ClusterError(RuntimeError):
    """The job's cluster description is missing, malformed or disagrees with the step."""


@dataclass(frozen=True)
class Cluster:
    """The nodes of a job, as seen from one node."""

    nodes: int
    node_rank: int
    master_addr: str
    master_port: int
    source: str
    """Which description it was read from: sagemaker, vertex, torch, steplift or single."""
    process: tuple[int, int, int] | None = None
    """(rank, local_rank, local_world_size) when the platform started this process itself."""


@dataclass(frozen=True)
class Distributed:
    """Where this process sits in a multi-node step (``steplift.distributed()``)."""

    world_size: int
    """Processes across all nodes."""
    rank: int
    """This process among them; rank 0's return value is the step's result."""
    local_rank: int
    """This process on its node (the GPU index it should use)."""
    local_world_size: int
    """Processes on this node."""
    node_rank: int
    nodes: int
    local_gpus: int
    """GPUs the step asked for per node."""
    master_addr: str
    master_port: int

    @property
    def is_chief(self) -> bool:
        """True on rank 0, the process whose return value is kept."""
        return self.rank == 0

    def torch_env(self) -> dict[str, str]:
        """The variables torch's ``env://`` rendezvous reads, plus steplift's own two."""
        return {
            "MASTER_ADDR": self.master_addr,
            "MASTER_PORT": str(self.master_port),
            "WORLD_SIZE": str(self.world_size),
            "RANK": str(self.rank),
            "NODE_RANK": str(self.node_rank),
            "LOCAL_RANK": str(self.local_rank),
            "LOCAL_WORLD_SIZE": str(self.local_world_size),
            NODES_VARIABLE: str(self.nodes),
            LOCAL_GPUS_VARIABLE: str(self.local_gpus),
        }


def _int(env: Mapping[str, str], name: str, default: int | None = None) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        if default is None:
            raise ClusterError(f"{name} is not set")
        return default
    try:
        return int(raw)
    except ValueError:
        raise ClusterError(f"{name} must be an integer, not {raw!r}") from None


def _host_port(address: str, what: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ClusterError(f"{what} must look like HOST:PORT, not {address!r}")
    return host, int(port)


def _from_torch(env: Mapping[str, str]) -> Cluster:
    world = _int(env, "WORLD_SIZE")
    rank = _int(env, "RANK")
    local_rank = _int(env, "LOCAL_RANK", 0)
    local_world = _int(env, "LOCAL_WORLD_SIZE", 0)
    nodes = _int(env, NODES_VARIABLE, 0) or _int(env, "AZUREML_NODE_COUNT", 0)
    if not local_world:
        local_world = max(world // nodes, 1) if nodes else 1
    if not nodes:
        nodes = max(world // local_world, 1)
    node_rank = _int(env, "NODE_RANK", rank // local_world)
    return Cluster(
        nodes=nodes,
        node_rank=node_rank,
        master_addr=env["MASTER_ADDR"],
        master_port=_int(env, "MASTER_PORT"),
        source="torch",
        process=(rank, local_rank, local_world),
    )


def _from_vertex(env: Mapping[str, str]) -> Cluster:
    try:
        spec = json.loads(env["CLUSTER_SPEC"])
        pools = spec["cluster"]
        task = spec["task"]
        chief = list(pools["workerpool0"])
        workers = list(pools.get("workerpool1", []))
        pool, index = str(task["type"]), int(task["index"])
    except (ValueError, KeyError, TypeError) as error:
        raise ClusterError(f"CLUSTER_SPEC is not a Vertex AI cluster spec: {error}") from None
    if pool not in ("workerpool0", "workerpool1") or not chief:
        raise ClusterError(f"CLUSTER_SPEC names task {pool!r}; steplift uses workerpool0 and 1")
    master_addr, master_port = _host_port(chief[0], "CLUSTER_SPEC workerpool0[0]")
    node_rank = index if pool == "workerpool0" else len(chief) + index
    return Cluster(
        nodes=len(chief) + len(workers),
        node_rank=node_rank,
        master_addr=env.get("MASTER_ADDR", master_addr),
        master_port=_int(env, "MASTER_PORT", master_port),
        source="vertex",
    )


def _from_sagemaker(env: Mapping[str, str], config_file: Path | None) -> Cluster:
    if config_file is not None:
        try:
            document = json.loads(config_file.read_text())
            hosts = [str(host) for host in document["hosts"]]
            current = str(document["current_host"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ClusterError(
                f"{config_file} is not a SageMaker resource config: {error}"
            ) from None
    else:
        try:
            hosts = [str(host) for host in json.loads(env["SM_HOSTS"])]
        except (ValueError, TypeError) as error:
            raise ClusterError(f"SM_HOSTS must be a JSON list of hosts: {error}") from None
        current = env.get("SM_CURRENT_HOST", "")
    hosts = sorted(hosts)
    if current not in hosts:
        raise ClusterError(f"current host {current!r} is not among the job's hosts {hosts}")
    return Cluster(
        nodes=len(hosts),
        node_rank=hosts.index(current),
        master_addr=env.get("MASTER_ADDR", hosts[0]),
        master_port=_int(env, "MASTER_PORT", DEFAULT_MASTER_PORT),
        source="sagemaker",
    )


def _sagemaker_config(env: Mapping[str, str]) -> Path | None:
    folder = env.get("SM_INPUT_CONFIG_DIR")
    path = Path(folder, "resourceconfig.json") if folder else Path(SAGEMAKER_RESOURCE_CONFIG)
    return path if path.is_file() else None


def read_cluster(env: Mapping[str, str] | None = None) -> Cluster:
    """The cluster this node belongs to, from whichever description the platform gave."""
    env = os.environ if env is None else env
    if all(name in env for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")):
        return _from_torch(env)
    if "CLUSTER_SPEC" in env:
        return _from_vertex(env)
    config_file = _sagemaker_config(env)
    if config_file is not None or "SM_HOSTS" in env:
        return _from_sagemaker(env, config_file)
    if NODES_VARIABLE in env:
        return Cluster(
            nodes=_int(env, NODES_VARIABLE),
            node_rank=_int(env, "NODE_RANK", 0),
            master_addr=env.get("MASTER_ADDR", "127.0.0.1"),
            master_port=_int(env, "MASTER_PORT", DEFAULT_MASTER_PORT),
            source="steplift",
        )
    return Cluster(
        nodes=1,
        node_rank=0,
        master_addr=env.get("MASTER_ADDR", "127.0.0.1"),
        master_port=_int(env, "MASTER_PORT", DEFAULT_MASTER_PORT),
        source="single",
    )


def process_view(
    cluster: Cluster, *, local_rank: int, processes_per_node: int, gpus: int
) -> Distributed:
    """The view of the process with ``local_rank`` on this node of ``cluster``."""
    if cluster.process is not None:
        rank, local_rank, processes_per_node = cluster.process
    else:
        rank = cluster.node_rank * processes_per_node + local_rank
    return Distributed(
        world_size=cluster.nodes * processes_per_node,
        rank=rank,
        local_rank=local_rank,
        local_world_size=processes_per_node,
        node_rank=cluster.node_rank,
        nodes=cluster.nodes,
        local_gpus=gpus,
        master_addr=cluster.master_addr,
        master_port=cluster.master_port,
    )


def distributed(env: Mapping[str, str] | None = None) -> Distributed:
    """Where this process sits in its step: world size, ranks, GPUs, rendezvous address.

    Inside a step run by steplift the entrypoint has exported the torch variables already;
    outside one (a plain script, a test) this reads the platform's description directly and
    a single process sees ``world_size == 1``.
    """
    env = os.environ if env is None else env
    gpus = _int(env, LOCAL_GPUS_VARIABLE, 0)
    return process_view(read_cluster(env), local_rank=0, processes_per_node=1, gpus=gpus)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (a job's rendezvous port)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
