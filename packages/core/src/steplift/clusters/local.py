"""steplift's ``local`` flavor: ``STEPLIFT_NODES``, ``NODE_RANK``, ``MASTER_ADDR``,
``MASTER_PORT`` (the local supervisor sets them for each node's process)."""

from __future__ import annotations

from collections.abc import Mapping

from steplift.cluster import DEFAULT_MASTER_PORT, NODES_VARIABLE, Cluster, ClusterReader, env_int


def read(env: Mapping[str, str]) -> Cluster | None:
    """The cluster ``STEPLIFT_NODES`` describes, or None without it."""
    if NODES_VARIABLE not in env:
        return None
    return Cluster(
        nodes=env_int(env, NODES_VARIABLE),
        node_rank=env_int(env, "NODE_RANK", 0),
        master_addr=env.get("MASTER_ADDR", "127.0.0.1"),
        master_port=env_int(env, "MASTER_PORT", DEFAULT_MASTER_PORT),
        source="steplift",
    )


READER = ClusterReader(
    name="steplift",
    precedence=40,  # steplift's own description: asked after every platform's
    variables=frozenset({NODES_VARIABLE, "NODE_RANK", "MASTER_ADDR", "MASTER_PORT"}),
    read=read,
)
