"""steplift.cluster: each cloud's cluster description read into one view."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steplift.cluster import (
    DEFAULT_MASTER_PORT,
    ClusterError,
    distributed,
    process_view,
    read_cluster,
)


def _resource_config(tmp_path: Path, current: str, hosts: list[str]) -> dict[str, str]:
    (tmp_path / "resourceconfig.json").write_text(
        json.dumps({"current_host": current, "hosts": hosts, "network_interface_name": "eth0"})
    )
    return {"SM_INPUT_CONFIG_DIR": str(tmp_path)}


def test_sagemaker_resource_config_orders_hosts_and_names_the_first_the_master(
    tmp_path: Path,
) -> None:
    env = _resource_config(tmp_path, "algo-3", ["algo-2", "algo-3", "algo-1"])
    cluster = read_cluster(env)
    assert (cluster.source, cluster.nodes, cluster.node_rank) == ("sagemaker", 3, 2)
    assert (cluster.master_addr, cluster.master_port) == ("algo-1", DEFAULT_MASTER_PORT)
    # A launcher (or the emulator, whose hosts do not resolve) that knows better wins.
    cluster = read_cluster({**env, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "4100"})
    assert (cluster.master_addr, cluster.master_port) == ("127.0.0.1", 4100)


def test_sagemaker_framework_variables_without_the_file() -> None:
    cluster = read_cluster({"SM_HOSTS": '["algo-1", "algo-2"]', "SM_CURRENT_HOST": "algo-2"})
    assert (cluster.nodes, cluster.node_rank, cluster.master_addr) == (2, 1, "algo-1")


def test_vertex_cluster_spec_puts_the_chief_pool_first() -> None:
    spec = {
        "cluster": {
            "workerpool0": ["chief-0:2222"],
            "workerpool1": ["worker-0:2222", "worker-1:2222"],
        },
        "environment": "cloud",
        "task": {"type": "workerpool1", "index": 1},
    }
    cluster = read_cluster({"CLUSTER_SPEC": json.dumps(spec)})
    assert (cluster.source, cluster.nodes, cluster.node_rank) == ("vertex", 3, 2)
    assert (cluster.master_addr, cluster.master_port) == ("chief-0", 2222)


def test_torch_variables_are_taken_as_the_platform_gave_them() -> None:
    env = {
        "MASTER_ADDR": "10.0.0.4",
        "MASTER_PORT": "6105",
        "WORLD_SIZE": "8",
        "RANK": "5",
        "LOCAL_RANK": "1",
        "LOCAL_WORLD_SIZE": "4",
        "NODE_RANK": "1",
        "AZUREML_NODE_COUNT": "2",
    }
    cluster = read_cluster(env)
    assert (cluster.source, cluster.nodes, cluster.node_rank) == ("torch", 2, 1)
    place = process_view(cluster, local_rank=0, processes_per_node=1, gpus=4)
    assert (place.world_size, place.rank, place.local_rank, place.local_world_size) == (8, 5, 1, 4)
    assert not place.is_chief


def test_processes_per_node_numbers_ranks_node_by_node() -> None:
    cluster = read_cluster(
        {"STEPLIFT_NODES": "3", "NODE_RANK": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "7"}
    )
    places = [
        process_view(cluster, local_rank=local, processes_per_node=4, gpus=4) for local in range(4)
    ]
    assert [place.rank for place in places] == [8, 9, 10, 11]
    env = places[1].torch_env()
    assert env["WORLD_SIZE"] == "12" and env["RANK"] == "9" and env["LOCAL_RANK"] == "1"
    assert env["NODE_RANK"] == "2" and env["MASTER_PORT"] == "7"
    # What the step then sees through steplift.distributed():
    seen = distributed(env)
    assert (seen.world_size, seen.rank, seen.node_rank, seen.nodes, seen.local_gpus) == (
        12,
        9,
        2,
        3,
        4,
    )


def test_outside_a_multi_node_job_there_is_one_process() -> None:
    place = distributed({})
    assert (place.world_size, place.rank, place.nodes, place.is_chief) == (1, 0, 1, True)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CLUSTER_SPEC": "{not json"}, "CLUSTER_SPEC"),
        ({"CLUSTER_SPEC": json.dumps({"cluster": {}, "task": {}})}, "CLUSTER_SPEC"),
        ({"SM_HOSTS": "algo-1", "SM_CURRENT_HOST": "algo-1"}, "SM_HOSTS"),
        ({"SM_HOSTS": '["algo-1"]', "SM_CURRENT_HOST": "algo-9"}, "algo-9"),
        ({"STEPLIFT_NODES": "two"}, "STEPLIFT_NODES"),
        (
            {"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "h", "MASTER_PORT": "port"},
            "MASTER_PORT",
        ),
    ],
)
def test_a_malformed_description_is_one_clear_error(env: dict[str, str], named: str) -> None:
    with pytest.raises(ClusterError, match=named):
        read_cluster(env)


def test_every_reader_is_registered_and_asked_in_order_of_precedence() -> None:
    from steplift.cluster import _builtin_readers, cluster_readers

    readers = cluster_readers()
    assert [reader.name for reader in readers] == ["torch", "vertex", "sagemaker", "steplift"]
    # Without the distribution's metadata (a source tree) core finds its own readers itself.
    assert sorted(_builtin_readers(), key=lambda reader: reader.precedence) == list(readers)


def test_no_job_inherits_any_readers_variables() -> None:
    from steplift.cluster import CLUSTER_VARIABLES, cluster_readers, without_cluster

    for reader in cluster_readers():
        assert reader.variables <= CLUSTER_VARIABLES, reader.name
    assert {"SM_HOSTS", "CLUSTER_SPEC", "AZUREML_NODE_COUNT", "RANK"} <= CLUSTER_VARIABLES
    env = {"PATH": "/bin", **dict.fromkeys(CLUSTER_VARIABLES, "1")}
    assert without_cluster(env) == {"PATH": "/bin"}


def test_names_that_moved_beside_their_reader_still_import() -> None:
    from steplift.cluster import SAGEMAKER_RESOURCE_CONFIG

    assert SAGEMAKER_RESOURCE_CONFIG == "/opt/ml/input/config/resourceconfig.json"
