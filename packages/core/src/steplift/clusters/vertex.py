"""Vertex AI: ``CLUSTER_SPEC``, a JSON document whose ``workerpool0`` holds the chief and
``workerpool1`` the other replicas, with ``task`` naming this replica."""

from __future__ import annotations

import json
from collections.abc import Mapping

from steplift.cluster import Cluster, ClusterError, ClusterReader, env_int, host_port

CLUSTER_SPEC = "CLUSTER_SPEC"


def read(env: Mapping[str, str]) -> Cluster | None:
    """The cluster ``CLUSTER_SPEC`` describes, or None without it."""
    if CLUSTER_SPEC not in env:
        return None
    try:
        spec = json.loads(env[CLUSTER_SPEC])
        pools = spec["cluster"]
        task = spec["task"]
        chief = list(pools["workerpool0"])
        workers = list(pools.get("workerpool1", []))
        pool, index = str(task["type"]), int(task["index"])
    except (ValueError, KeyError, TypeError) as error:
        raise ClusterError(f"CLUSTER_SPEC is not a Vertex AI cluster spec: {error}") from None
    if pool not in ("workerpool0", "workerpool1") or not chief:
        raise ClusterError(f"CLUSTER_SPEC names task {pool!r}; steplift uses workerpool0 and 1")
    master_addr, master_port = host_port(chief[0], "CLUSTER_SPEC workerpool0[0]")
    node_rank = index if pool == "workerpool0" else len(chief) + index
    return Cluster(
        nodes=len(chief) + len(workers),
        node_rank=node_rank,
        master_addr=env.get("MASTER_ADDR", master_addr),
        master_port=env_int(env, "MASTER_PORT", master_port),
        source="vertex",
    )


READER = ClusterReader(
    name="vertex",
    precedence=20,
    variables=frozenset({CLUSTER_SPEC, "MASTER_ADDR", "MASTER_PORT"}),
    read=read,
)
