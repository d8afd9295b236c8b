"""One view of a multi-node job, whichever platform runs it.

Each platform describes the cluster to the container in its own words, and each description
has a reader of its own in :mod:`steplift.clusters`, beside that platform's variable names
(the SageMaker resource config, Vertex AI's ``CLUSTER_SPEC``, the torch ``env://`` variables
of torchrun and Azure ML, steplift's ``local`` flavor). Readers are registered in the
``steplift.cluster_readers`` entry-point group, so this module names no platform: a new one
registers its reader from its own distribution.

:func:`read_cluster` asks the registered readers in order of precedence and turns the first
description found into a :class:`Cluster` (node level); the entrypoint derives each process's
:class:`Distributed` view from it and exports the torch variables, so that inside a step
``steplift.distributed()`` and ``torch.distributed.init_process_group("gloo" or "nccl")``
both just work. Standard library only: this runs in every job.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

DEFAULT_MASTER_PORT = 29500
"""torch's own default rendezvous port, used where a platform names hosts but no port."""

READER_GROUP = "steplift.cluster_readers"
"""The entry-point group of cluster readers: ``NAME = "module:READER"``, each a
:class:`ClusterReader` whose name is ``NAME``."""

NODES_VARIABLE = "STEPLIFT_NODES"
LOCAL_GPUS_VARIABLE = "STEPLIFT_LOCAL_GPUS"

TORCH_VARIABLES = frozenset(
    {
        "MASTER_ADDR",
        "MASTER_PORT",
        "WORLD_SIZE",
        "RANK",
        "NODE_RANK",
        "LOCAL_RANK",
        "LOCAL_WORLD_SIZE",
    }
)
"""The variables of torch's ``env://`` rendezvous, which steplift exports to every process."""

if TYPE_CHECKING:
    CLUSTER_VARIABLES: frozenset[str]
    """Every variable that describes a cluster to a process: steplift's own
    (:data:`TORCH_VARIABLES` and its two) and every registered reader's. A job never inherits
    these from whatever launched it (a launcher may itself run in a cluster): the job's own
    platform sets them. Computed on first use (it asks the entry points)."""


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
    """Which description it was read from: the reader's name (sagemaker, vertex, torch,
    steplift), or single."""
    process: tuple[int, int, int] | None = None
    """(rank, local_rank, local_world_size) when the platform started this process itself."""


@dataclass(frozen=True)
class ClusterReader:
    """One platform's cluster description, as a reader registered in :data:`READER_GROUP`."""

    name: str
    """The :attr:`Cluster.source` of what it reads (also its entry point's name)."""
    precedence: int
    """Readers are asked in increasing precedence; the first that finds its description wins."""
    variables: frozenset[str]
    """The variables it reads: no job inherits them from its launcher."""
    read: Callable[[Mapping[str, str]], Cluster | None]
    """The cluster ``env`` describes, or None when ``env`` holds no description of this kind;
    raises :class:`ClusterError` when the description is there but malformed."""


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


def env_int(env: Mapping[str, str], name: str, default: int | None = None) -> int:
    """The integer variable ``name``; ``default`` when unset or empty (ClusterError without)."""
    raw = env.get(name)
    if raw is None or raw == "":
        if default is None:
            raise ClusterError(f"{name} is not set")
        return default
    try:
        return int(raw)
    except ValueError:
        raise ClusterError(f"{name} must be an integer, not {raw!r}") from None


def host_port(address: str, what: str) -> tuple[str, int]:
    """``HOST:PORT`` split; ClusterError naming ``what`` otherwise."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ClusterError(f"{what} must look like HOST:PORT, not {address!r}")
    return host, int(port)


@cache
def cluster_readers() -> tuple[ClusterReader, ...]:
    """Every registered reader, in the order :func:`read_cluster` asks them."""
    from importlib.metadata import entry_points

    readers = [entry.load() for entry in entry_points(group=READER_GROUP)]
    if not readers:  # core run from a source tree, without its distribution's metadata
        readers = _builtin_readers()
    for reader in readers:
        if not isinstance(reader, ClusterReader):
            raise ClusterError(f"{reader!r} registered in {READER_GROUP} is not a ClusterReader")
    return tuple(sorted(readers, key=lambda reader: (reader.precedence, reader.name)))


def _builtin_readers() -> list[ClusterReader]:
    """The readers shipped in :mod:`steplift.clusters`, found without entry points."""
    import importlib
    import pkgutil

    import steplift.clusters

    modules = pkgutil.iter_modules(steplift.clusters.__path__, "steplift.clusters.")
    found = [importlib.import_module(module.name) for module in modules if not module.ispkg]
    return [module.READER for module in found if hasattr(module, "READER")]


@cache
def _cluster_variables() -> frozenset[str]:
    own = TORCH_VARIABLES | {NODES_VARIABLE, LOCAL_GPUS_VARIABLE}
    return own.union(*(reader.variables for reader in cluster_readers()))


_MOVED = {"SAGEMAKER_RESOURCE_CONFIG": ("steplift.clusters.sagemaker", "RESOURCE_CONFIG")}
"""Names that moved beside their platform's reader, still importable from here."""


def __getattr__(name: str) -> object:
    if name == "CLUSTER_VARIABLES":
        return _cluster_variables()
    if name in _MOVED:
        import importlib

        module, attribute = _MOVED[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def without_cluster(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without any cluster description (see :data:`CLUSTER_VARIABLES`)."""
    variables = _cluster_variables()
    return {name: value for name, value in env.items() if name not in variables}


def read_cluster(env: Mapping[str, str] | None = None) -> Cluster:
    """The cluster this node belongs to, from whichever description the platform gave."""
    env = os.environ if env is None else env
    for reader in cluster_readers():
        cluster = reader.read(env)
        if cluster is not None:
            return cluster
    return Cluster(
        nodes=1,
        node_rank=0,
        master_addr=env.get("MASTER_ADDR", "127.0.0.1"),
        master_port=env_int(env, "MASTER_PORT", DEFAULT_MASTER_PORT),
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
    gpus = env_int(env, LOCAL_GPUS_VARIABLE, 0)
    return process_view(read_cluster(env), local_rank=0, processes_per_node=1, gpus=gpus)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (a job's rendezvous port)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
