"""The torch ``env://`` variables, as torchrun and Azure ML's PyTorch distribution set them.

The platform has started this process itself and says where it sits: ``MASTER_ADDR``,
``MASTER_PORT``, ``WORLD_SIZE``, ``RANK`` (required), ``NODE_RANK``, ``LOCAL_RANK``,
``LOCAL_WORLD_SIZE``; Azure ML adds its node count.
"""

from __future__ import annotations

from collections.abc import Mapping

from steplift.cluster import (
    NODES_VARIABLE,
    TORCH_VARIABLES,
    Cluster,
    ClusterReader,
    env_int,
)

REQUIRED = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
AZUREML_NODE_COUNT = "AZUREML_NODE_COUNT"


def read(env: Mapping[str, str]) -> Cluster | None:
    """The cluster of a process the platform started, or None without the torch variables."""
    if not all(name in env for name in REQUIRED):
        return None
    world = env_int(env, "WORLD_SIZE")
    rank = env_int(env, "RANK")
    local_rank = env_int(env, "LOCAL_RANK", 0)
    local_world = env_int(env, "LOCAL_WORLD_SIZE", 0)
    nodes = env_int(env, NODES_VARIABLE, 0) or env_int(env, AZUREML_NODE_COUNT, 0)
    if not local_world:
        local_world = max(world // nodes, 1) if nodes else 1
    if not nodes:
        nodes = max(world // local_world, 1)
    node_rank = env_int(env, "NODE_RANK", rank // local_world)
    return Cluster(
        nodes=nodes,
        node_rank=node_rank,
        master_addr=env["MASTER_ADDR"],
        master_port=env_int(env, "MASTER_PORT"),
        source="torch",
        process=(rank, local_rank, local_world),
    )


READER = ClusterReader(
    name="torch",
    precedence=10,  # the most precise: the platform placed this very process
    variables=TORCH_VARIABLES | {NODES_VARIABLE, AZUREML_NODE_COUNT},
    read=read,
)
